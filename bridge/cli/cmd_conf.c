/* cmd_conf.c -- what every command that takes -c FILE does with it, and
 * the process limits the long-running commands raise */
#include <string.h>
#include <sys/resource.h>

#include "cmd.h"

int kb_cmd_conf_load(kb_conf_t *conf, const char *path, int argc, char **argv,
                     int first, char *errstr, size_t errstr_size)
{
        int i, r;

        if ((r = kb_conf_load_file(conf, path, errstr, errstr_size)) != KB_OK)
                return r;
        for (i = first; i < argc; i++)
                if (!strcmp(argv[i], "-X") && i + 1 < argc &&
                    (r = kb_conf_set_kv(conf, argv[++i], errstr,
                                        errstr_size)) != KB_OK)
                        return r;
        return KB_OK;
}

void kb_cmd_raise_nofile(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max &&
            rl.rlim_cur < 16384) {
                rl.rlim_cur = rl.rlim_max < 16384 ? rl.rlim_max : 16384;
                setrlimit(RLIMIT_NOFILE, &rl);
        }
}
