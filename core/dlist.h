/* core/dlist.h: the intrusive doubly linked list, one shape for every list
 * in gev (watchers, the run queue, wait queues, timers in order, pools,
 * servers' clients, thread-pool workers).
 *
 * A list is a `head` (and maybe a `tail`) pointer; a node links through
 * two fields whose names are arguments, so a node can be on several lists.
 * Macros rather than functions: the node types differ, and the hot paths
 * (the run queue, wait queues) need the code inline. */
#ifndef GEV_CORE_DLIST_H
#define GEV_CORE_DLIST_H

#include <stddef.h>

/* Append node at the tail of (head, tail). */
#define GEV__DLIST_APPEND(head, tail, node, next, prev) do { \
        (node)->next = NULL;                                \
        (node)->prev = (tail);                              \
        if (tail)                                           \
            (tail)->next = (node);                          \
        else                                                \
            (head) = (node);                                \
        (tail) = (node);                                    \
    } while (0)

/* Put node first in a list that keeps only its head. */
#define GEV__DLIST_PUSH_HEAD(head, node, next, prev) do { \
        (node)->prev = NULL;                                \
        (node)->next = (head);                              \
        if (head)                                           \
            (head)->prev = (node);                          \
        (head) = (node);                                    \
    } while (0)

/* Take node out of a list that keeps only its head. */
#define GEV__DLIST_UNLINK_HEAD(head, node, next, prev) do { \
        if ((node)->prev)                                   \
            (node)->prev->next = (node)->next;              \
        else                                                \
            (head) = (node)->next;                          \
        if ((node)->next)                                   \
            (node)->next->prev = (node)->prev;              \
    } while (0)

/* Take node out of (head, tail). */
#define GEV__DLIST_UNLINK(head, tail, node, next, prev) do { \
        if (!(node)->next)                                   \
            (tail) = (node)->prev;                           \
        GEV__DLIST_UNLINK_HEAD(head, node, next, prev);      \
    } while (0)

#endif
