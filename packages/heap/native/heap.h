// heap.h — placeholder; the heap lands with issue 5.
#pragma once
#include "pager.h"
namespace persist {
constexpr unsigned kHeapAlign = PST_HEAP_ALIGN;
}
