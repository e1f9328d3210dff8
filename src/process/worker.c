#include "process/worker.h"

#include <unistd.h>

#include "core/log.h"
#include "process/instance.h"
#include "process/privileges.h"

int worker_main(const struct options *o, struct conf *conf, uint64_t generation, int id,
                struct stats_slots *slots, int ready_fd, struct upgrade *up)
{
    struct instance in;
    int rc = 1;
    /* a restarted worker starts at the master's generation */
    if (instance_init(&in, o, conf, generation, id, slots, up) == 0 &&
        privileges_drop(&conf->global) == 0) {
        if (ready_fd >= 0) {
            ssize_t unused = write(ready_fd, "R", 1);
            (void)unused;
        }
        log_notice("worker %d serving on pid %d", id, (int)getpid());
        rc = instance_run(&in) == 0 ? 0 : 1;
    }
    if (ready_fd >= 0) {
        close(ready_fd);
    }
    instance_deinit(&in);
    log_notice("worker %d on pid %d exiting", id, (int)getpid());
    return rc;
}
