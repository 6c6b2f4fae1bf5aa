// Native tests of the pager core (run under ASan/UBSan by scripts/native-tests.sh).
#include <cstdio>
#include <cstring>
#include "pager.h"

int main() {
  if (std::strcmp(persist::error_code_name(persist::Code::CORRUPT), "PERSIST_CORRUPT") != 0) return 1;
  std::printf("pager native: 1 passed, 0 failed\n");
  return 0;
}
