// binding.cc — N-API surface of the pager (placeholder until issue 4 lands).
#include <napi.h>

#include "pager.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  exports.Set("formatVersion", Napi::Number::New(env, PST_FORMAT_VERSION));
  exports.Set("pageSize", Napi::Number::New(env, PST_PAGE_SIZE));
  return exports;
}
NODE_API_MODULE(pager, Init)
