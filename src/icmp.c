// SPDX-License-Identifier: MIT
#include "icmp.h"

#include <string.h>

#include "offload.h"

size_t icmp_unreachable_build(const uint8_t *pkt, size_t len, uint8_t out[static ICMP_REPLY_MAX])
{
	size_t quote, n;

	memset(out, 0, ICMP_REPLY_MAX);
	if (len >= 20 && pkt[0] >> 4 == 4) {
		size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;

		if (pkt[9] == 1 && len > ihl && pkt[ihl] != 8)
			return 0; /* never answer ICMP errors */
		quote = len < 548 ? len : 548;
		n = 20 + 8 + quote;
		out[0] = 0x45;
		out[2] = (uint8_t)(n >> 8);
		out[3] = (uint8_t)n;
		out[8] = 64;
		out[9] = 1;
		memcpy(out + 12, pkt + 16, 4);
		memcpy(out + 16, pkt + 12, 4);
		{
			uint16_t c = offload_csum_fold(offload_csum_add(0, out, 20));

			out[10] = (uint8_t)(c >> 8);
			out[11] = (uint8_t)c;
		}
		out[20] = 3;
		out[21] = 1;
		memcpy(out + 28, pkt, quote);
		{
			uint16_t c = offload_csum_fold(offload_csum_add(0, out + 20, 8 + quote));

			out[22] = (uint8_t)(c >> 8);
			out[23] = (uint8_t)c;
		}
	} else if (len >= 40 && pkt[0] >> 4 == 6) {
		uint32_t sum;
		uint8_t pseudo[8] = { 0 };

		if (pkt[6] == 58 && len > 40 && pkt[40] < 128)
			return 0;
		quote = len < 1280 - 48 ? len : 1280 - 48;
		n = 40 + 8 + quote;
		out[0] = 0x60;
		out[4] = (uint8_t)((n - 40) >> 8);
		out[5] = (uint8_t)(n - 40);
		out[6] = 58;
		out[7] = 64;
		memcpy(out + 8, pkt + 24, 16);
		memcpy(out + 24, pkt + 8, 16);
		out[40] = 1;
		out[41] = 3;
		memcpy(out + 48, pkt, quote);
		pseudo[2] = (uint8_t)((n - 40) >> 8);
		pseudo[3] = (uint8_t)(n - 40);
		pseudo[7] = 58;
		sum = offload_csum_add(0, out + 8, 32);
		sum = offload_csum_add(sum, pseudo, 8);
		sum = offload_csum_add(sum, out + 40, n - 40);
		{
			uint16_t c = offload_csum_fold(sum);

			out[42] = (uint8_t)(c >> 8);
			out[43] = (uint8_t)c;
		}
	} else {
		return 0;
	}
	return n;
}
