#include "proto/proto.h"

#include <stdlib.h>
#include <string.h>

void spans_init(struct spans *s)
{
    s->v = NULL;
    s->n = 0;
    s->cap = 0;
}

void spans_free(struct spans *s)
{
    free(s->v);
    spans_init(s);
}

int spans_grow(struct spans *s)
{
    uint32_t cap = s->cap ? s->cap * 2 : 8;
    struct span *v = realloc(s->v, (size_t)cap * sizeof(*v));
    if (v == NULL) {
        return -1;
    }
    s->v = v;
    s->cap = cap;
    return 0;
}

void req_info_init(struct req_info *info)
{
    memset(info, 0, sizeof(*info));
    spans_init(&info->keys);
    spans_init(&info->args);
    buf_init(&info->wire);
}

void req_info_free(struct req_info *info)
{
    spans_free(&info->keys);
    spans_free(&info->args);
    buf_free(&info->wire);
}

void rsp_info_init(struct rsp_info *info)
{
    memset(info, 0, sizeof(*info));
    spans_init(&info->elems);
    spans_init(&info->ekeys);
}

void rsp_info_free(struct rsp_info *info)
{
    spans_free(&info->elems);
    spans_free(&info->ekeys);
}

void rsp_info_reset(struct rsp_info *info)
{
    spans_reset(&info->elems);
    spans_reset(&info->ekeys);
    info->len = 0;
    info->is_error = false;
    info->type = 0;
    info->integer = 0;
    info->push = PUSH_NONE;
    info->sub = SUB_NONE;
    info->chan_null = false;
    info->chan.off = info->chan.len = 0;
    info->count = 0;
    info->err[0] = '\0';
}
