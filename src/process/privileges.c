#include "process/privileges.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/log.h"

/* global: user/group (meitu's keys): once the listeners are bound, a proxy
 * started as root gives up root. Not being able to is fatal: running as root
 * when told otherwise is worse than not running. */
int privileges_drop(const struct conf_global *g)
{
    if ((g->user == NULL && g->group == NULL) || geteuid() != 0) {
        return 0;
    }
    gid_t gid = getegid();
    uid_t uid = 0;
    if (g->group != NULL) {
        struct group *gr = getgrnam(g->group);
        if (gr == NULL) {
            log_error("global: group '%s' does not exist", g->group);
            return -1;
        }
        gid = gr->gr_gid;
    }
    if (g->user != NULL) {
        struct passwd *pw = getpwnam(g->user);
        if (pw == NULL) {
            log_error("global: user '%s' does not exist", g->user);
            return -1;
        }
        uid = pw->pw_uid;
        if (g->group == NULL) {
            gid = pw->pw_gid;
        }
    }
    log_chown(g->user != NULL ? uid : (uid_t)-1, gid);
    if (setgroups(1, &gid) != 0 || setgid(gid) != 0 || (g->user != NULL && setuid(uid) != 0)) {
        log_error("dropping privileges failed: %s", strerror(errno));
        return -1;
    }
    log_notice("running as uid %d gid %d", (int)getuid(), (int)getgid());
    return 0;
}
