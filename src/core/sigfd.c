#include "core/sigfd.h"

#include <signal.h>
#include <sys/signalfd.h>

int sigfd_open(const int *sigs, size_t n)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < n; i++) {
        sigaddset(&set, sigs[i]);
    }
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
        return -1;
    }
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}
