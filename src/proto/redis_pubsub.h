/*
 * redis_pubsub: helpers of the response parser for subscribed connections.
 */
#ifndef NC_PROTO_REDIS_PUBSUB_H
#define NC_PROTO_REDIS_PUBSUB_H

#include <stdint.h>

#include "proto/proto.h"

/* After a complete parse of the reply p, answering command cmd: when cmd is one of
 * SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE (the core parses the replies of a
 * subscribed connection with it), say in info->push what the reply is. */
void redis_push_classify(const uint8_t *p, uint16_t cmd, struct rsp_info *info);

#endif
