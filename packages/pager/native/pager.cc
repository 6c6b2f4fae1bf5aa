// pager.cc — placeholder: the implementation lands with issue 4.
#include "pager.h"

namespace persist {
const char* error_code_name(Code c) {
  switch (c) {
    case Code::CORRUPT: return "PERSIST_CORRUPT";
    case Code::NOT_STORE: return "PERSIST_NOT_STORE";
    case Code::VERSION: return "PERSIST_VERSION";
    case Code::LOCKED: return "PERSIST_LOCKED";
    case Code::NOSPC: return "PERSIST_NOSPC";
    case Code::CLOSED: return "PERSIST_CLOSED";
    case Code::IO: return "PERSIST_IO";
    case Code::PERM: return "PERSIST_PERM";
    case Code::NOT_FOUND: return "PERSIST_NOT_FOUND";
    case Code::TXN: return "PERSIST_TXN";
    case Code::INVALID: return "PERSIST_INVALID";
    case Code::READONLY: return "PERSIST_READONLY";
    case Code::UNSUPPORTED: return "PERSIST_UNSUPPORTED";
    case Code::TOO_BIG: return "PERSIST_TOO_BIG";
  }
  return "PERSIST_UNKNOWN";
}
}  // namespace persist
