/* wh_delivery.c -- parsing a verified delivery, finished statuses */
#include "wh_delivery.h"

#include <string.h>

#include "json.h"
#include "util.h"

int kb_wh_delivery_parse(json_object *body, kb_wh_delivery_t *dlv, char *errstr,
                         size_t errstr_size)
{
        const char *bad = NULL;
        json_object *dec;

        memset(dlv, 0, sizeof(*dlv));
        if (!body || !json_object_is_type(body, json_type_object)) {
                kb_snprintf(errstr, errstr_size,
                            "The delivery is not a JSON object.");
                return KB_ERR_MALFORMED;
        }
        dlv->body = body;
        dlv->session_id = kb_json_get_str(body, "session_id");
        dlv->status = kb_json_get_str(body, "status");
        dlv->webhook_type = kb_json_get_str(body, "webhook_type");
        if (!dlv->session_id || !*dlv->session_id)
                bad = "session_id";
        else if (!dlv->status || !*dlv->status)
                bad = "status";
        else if (!dlv->webhook_type || !*dlv->webhook_type)
                bad = "webhook_type";
        else if (kb_json_get_i64(body, "timestamp", &dlv->timestamp) == -1)
                bad = "timestamp";
        if (bad) {
                kb_snprintf(errstr, errstr_size,
                            "Missing or invalid member '%s'.", bad);
                return KB_ERR_MALFORMED;
        }
        dlv->vendor_data = kb_json_get_str(body, "vendor_data");
        dec = kb_json_get(body, "decision");
        if (dec && json_object_is_type(dec, json_type_object)) {
                dlv->decision = dec;
                dlv->workflow_id = kb_json_get_str(dec, "workflow_id");
                dlv->session_kind = kb_json_get_str(dec, "session_kind");
        }
        return KB_OK;
}

kb_wh_status_t kb_wh_status_canon(const char *status)
{
        static const struct {
                const char *name;
                kb_wh_status_t st;
        } map[] = {
                { "Approved", KB_WH_ST_APPROVED },
                { "APPROVED", KB_WH_ST_APPROVED },
                { "Declined", KB_WH_ST_DECLINED },
                { "DECLINED", KB_WH_ST_DECLINED },
                { "In Review", KB_WH_ST_IN_REVIEW },
                { "IN_REVIEW", KB_WH_ST_IN_REVIEW },
        };
        size_t i;

        if (!status)
                return KB_WH_ST_OTHER;
        for (i = 0; i < KB_ARRAY_SIZE(map); i++)
                if (!strcmp(map[i].name, status))
                        return map[i].st;
        return KB_WH_ST_OTHER;
}

const char *kb_wh_status_name(kb_wh_status_t st)
{
        switch (st) {
        case KB_WH_ST_APPROVED:
                return "APPROVED";
        case KB_WH_ST_DECLINED:
                return "DECLINED";
        case KB_WH_ST_IN_REVIEW:
                return "IN_REVIEW";
        default:
                return NULL;
        }
}
