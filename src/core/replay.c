// SPDX-License-Identifier: MIT
/*
 * Replay window (the WireGuard paper, 5.4.6; RFC 6479's ring of bitmap words, as
 * wireguard-go's replay.go and the kernel's counter_validate use it).
 *
 * The ring holds 128 words of 64 bits. The word holding `greatest` is only
 * partly history (its high bits are counters not seen yet), so the window is
 * the other 127 words: 8128 counters. A counter exactly 8128 below greatest
 * lands in the word just after greatest's word in ring order, which is the
 * next one to be cleared, so its bit is still valid when we look at it.
 */
#include "replay.h"

#include <string.h>

enum {
	WORD_BITS = 64,
	WORD_SHIFT = 6,
	RING_WORDS = COUNTER_BITS_TOTAL / WORD_BITS,
	RING_MASK = RING_WORDS - 1,
};

_Static_assert((RING_WORDS & RING_MASK) == 0, "ring size must be a power of two");
_Static_assert(COUNTER_WINDOW_SIZE == (RING_WORDS - 1) * WORD_BITS,
	       "window is the ring minus the word holding greatest");

void replay_init(struct replay_counter *r)
{
	memset(r, 0, sizeof(*r));
}

/*
 * Moves greatest forward to counter, zeroing every ring word that now stands
 * for counters above the old greatest. A jump of a whole ring or more clears
 * everything once instead of looping over the gap.
 */
static void slide(struct replay_counter *r, uint64_t counter)
{
	uint64_t cur = r->greatest >> WORD_SHIFT;
	uint64_t steps = (counter >> WORD_SHIFT) - cur, i;

	if (steps > RING_WORDS)
		steps = RING_WORDS;
	for (i = 1; i <= steps; i++)
		r->ring[(cur + i) & RING_MASK] = 0;
	r->greatest = counter;
}

bool replay_check_and_set(struct replay_counter *r, uint64_t counter)
{
	uint64_t bit = 1ULL << (counter & (WORD_BITS - 1));
	uint64_t *word;

	/* Past this limit the keypair is dead; never accept, never slide. */
	if (counter >= REJECT_AFTER_MESSAGES)
		return false;
	if (counter > r->greatest)
		slide(r, counter);
	else if (r->greatest - counter > COUNTER_WINDOW_SIZE)
		return false;

	word = &r->ring[(counter >> WORD_SHIFT) & RING_MASK];
	if (*word & bit)
		return false;
	*word |= bit;
	return true;
}
