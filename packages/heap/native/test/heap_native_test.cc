#include <cstdio>
#include "heap.h"
int main() {
  if (persist::kHeapAlign != 16) return 1;
  std::printf("heap native: 1 passed, 0 failed\n");
  return 0;
}
