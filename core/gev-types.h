/* core/gev-types.h: the public types whose objects the core implements.
 *
 * The core (hub, greenlets, scoped timeouts) defines these structs, so it
 * declares their names here, at its own floor, and no core header includes
 * api/gev.h.  api/gev.h, the contract users read, declares the same
 * typedefs again next to the calls that take them (C11 allows an identical
 * typedef twice).  A core .c file that defines a gev_* call includes gev.h
 * itself: its GEV_API declaration is what exports the call, and the
 * compiler checks the definition against it.
 */
#ifndef GEV_CORE_GEV_TYPES_H
#define GEV_CORE_GEV_TYPES_H

typedef struct gev_hub gev_hub;
typedef struct gev_greenlet gev_greenlet;
typedef struct gev_timeout gev_timeout;
typedef void *(*gev_fn)(void *arg);

#endif
