# Node's own headers (v8.h, node_version.h) for native/v8_window.h: store views that
# V8 does not count as external memory (no GC at open). Optional: without them the
# addon builds and works with Node-API views only. Set PERSIST_NODE_INCLUDE to point
# at another <prefix>/include/node; nothing is downloaded.
# Usage: include(.../node_v8.cmake) then persist_use_node_v8(<target>).
function(persist_use_node_v8 target)
  if(DEFINED ENV{PERSIST_NODE_INCLUDE})
    set(inc "$ENV{PERSIST_NODE_INCLUDE}")
  else()
    execute_process(COMMAND node -p "require('path').resolve(process.execPath, '../../include/node')"
      OUTPUT_VARIABLE inc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  endif()
  if(inc AND EXISTS "${inc}/v8.h" AND EXISTS "${inc}/node_version.h")
    message(STATUS "persist: uncounted V8 store views (headers in ${inc})")
    # SYSTEM: searched after the Node-API headers of cmake-js, no warnings from V8.
    target_include_directories(${target} SYSTEM PRIVATE "${inc}")
    target_compile_definitions(${target} PRIVATE PERSIST_HAVE_V8_H=1)
  else()
    message(STATUS "persist: Node's v8.h not found; store views are Node-API external buffers")
  endif()
endfunction()
