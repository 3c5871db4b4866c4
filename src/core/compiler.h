/* SPDX-License-Identifier: MIT */
/* Small compiler helpers shared by the core and the daemon. */
#ifndef VEIL_COMPILER_H
#define VEIL_COMPILER_H

#include <stddef.h>

/* NOLINTNEXTLINE(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp): the kernel's name, on purpose. */
#define __must_check __attribute__((warn_unused_result))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
