#include "index/thread_name.h"

#include <sys/prctl.h>

namespace rwd {

void NameThisThread(const std::string& name) {
  std::string cut = name.substr(0, 15);
  prctl(PR_SET_NAME, cut.c_str(), 0, 0, 0);
}

}  // namespace rwd
