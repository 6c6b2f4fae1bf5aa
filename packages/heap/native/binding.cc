// binding.cc — N-API surface of the heap (placeholder until issue 5 lands).
#include <napi.h>

#include "heap.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  exports.Set("align", Napi::Number::New(env, persist::kHeapAlign));
  return exports;
}
NODE_API_MODULE(heap, Init)
