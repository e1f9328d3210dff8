/*
 * slot: how workers hand their counters to the master (SPEC 8). One shared
 * anonymous mapping, made before fork(), holds one slot per worker; a worker
 * publishes an encoded snapshot (stats/snap.h) into its slot under a seqlock,
 * and the master reads every slot and sums. The writer never waits for the
 * reader: a reader that saw a write in progress tries again.
 */
#ifndef NC_STATS_SLOT_H
#define NC_STATS_SLOT_H

#include <stddef.h>
#include <stdint.h>

#include "stats/snap.h"

struct stats_slots;

/* n slots of cap bytes each in one MAP_SHARED|MAP_ANONYMOUS|MAP_NORESERVE
 * mapping (untouched pages cost nothing, so cap may be large). NULL on failure. */
struct stats_slots *stats_slots_create(uint32_t n, size_t cap);
void stats_slots_destroy(struct stats_slots *sl);
/* Worker side (one writer per slot): publish s into slot i. Returns 0, or -1
 * when the encoded snapshot does not fit (warned about once per process) or
 * memory ran out. */
int stats_slot_publish(struct stats_slots *sl, uint32_t i, const struct stats_snap *s);
/* Master side: a decoded copy of slot i, retrying a few times when a write is
 * in progress; NULL when the slot is empty/cleared or could not be read
 * consistently. */
struct stats_snap *stats_slot_read(struct stats_slots *sl, uint32_t i);
/* Empty slot i (a worker was replaced). Only once the slot's writer is gone:
 * a seqlock has one writer. Also repairs a slot whose writer died mid-write. */
void stats_slot_clear(struct stats_slots *sl, uint32_t i);

#endif
