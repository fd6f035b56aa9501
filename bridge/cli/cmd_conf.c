/* cmd_conf.c -- what every command that takes -c FILE does with it */
#include <string.h>

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
