// binding.cc — N-API surface of @persist/pager: one handle class (PagerHandle) whose
// methods come from pager_binding.h, so @persist/heap's handle has the same ones.
#include <napi.h>

#include "pager.h"
#include "pager_binding.h"

namespace {

// Bump when the JS-visible surface of the addon changes (src/index.ts checks it).
constexpr int kAbiVersion = 3;

class PagerHandle : public Napi::ObjectWrap<PagerHandle>, public persist_napi::PagerHolder {
 public:
  explicit PagerHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PagerHandle>(info) {
    OpenFromArgs(info);
    InstallFastMethods(info.Env(), info.This().As<Napi::Object>());
  }
  static Napi::Function Define(Napi::Env env) { return DefineClass(env, "PagerHandle", persist_napi::PagerMethods<PagerHandle>()); }
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, kAbiVersion));
  exports.Set("formatVersion", Napi::Number::New(env, PST_FORMAT_VERSION));
  exports.Set("pageSize", Napi::Number::New(env, PST_PAGE_SIZE));
  // true: windows() views are not counted by V8 as external memory (v8_window.h)
  exports.Set("uncountedViews", Napi::Boolean::New(env, persist_napi::V8Windows::Available(env)));
  exports.Set("setErrorClass", Napi::Function::New(env, persist_napi::SetErrorClassFn, "setErrorClass"));
  exports.Set("PagerHandle", PagerHandle::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(pager, Init)
