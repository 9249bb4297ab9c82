/* swift-track's C ABI (Sources/TrackC). Every function but st_abi_version, st_last_error, st_free
 * and st_metric_free returns a status: 0 done, 1 error, 2 invalid argument, 3 not found; the
 * message of the last failure on the calling thread is st_last_error() (valid until that thread's
 * next call). No Swift error or trap crosses the boundary. A database handle may be used from
 * several threads; a metric handle from one thread at a time. */
#ifndef SWIFT_TRACK_H
#define SWIFT_TRACK_H
#include <stdint.h>

#define ST_ABI_VERSION 2

int32_t st_abi_version(void);
const char *st_last_error(void);
void st_free(void *pointer);

/* Opens the backend a URI names (file://path, a bare path, ephemeral://, pickled://...). */
int32_t st_open(const char *uri, void **database);
/* Commits and closes; the handle is invalid afterwards, whatever the status. */
int32_t st_close(void *database);
int32_t st_commit(void *database);
/* One request of track's protocol (JSON with "__rpc__" naming the operation, as Python track's
 * SocketClient sends it); *reply gets the reply's JSON, to free with st_free. */
int32_t st_request(void *database, const char *request_json, char **reply);

/* A metric series of a trial; points go to the backend's fastest path (on file:// an
 * allocation-free append). The trial is checked on the first point. */
int32_t st_metric(void *database, const char *trial_uid, const char *name, void **metric);
void st_metric_free(void *metric);
int32_t st_metric_log(void *metric, int64_t step, int32_t has_step, double value);
/* st_metric_log with a step: the per-point path (one argument fewer to convert from Python). */
int32_t st_metric_log_step(void *metric, int64_t step, double value);
int32_t st_metric_log_many(void *metric, const int64_t *steps, const double *values, int64_t count, int64_t *logged);

/* Reads a metric of a trial as track keeps it (a step-keyed metric: one point per step, in the
 * order steps first came; a list: every point in order) into caller-provided buffers: *count gets
 * the number of points, at most `capacity` are copied (steps or values may be NULL; a capacity of
 * 0 asks for the count). No step, or a step that is not an integer: INT64_MIN; a value that is not
 * a number: NaN. Status 3 when the trial does not exist; a missing metric has 0 points. */
int32_t st_series_read(void *database, const char *trial_uid, const char *name, int64_t *steps, double *values,
                       int64_t capacity, int64_t *count);

#endif
