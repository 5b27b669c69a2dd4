/*
 * batch.c — merging of concurrent SUBMIT calls into one request, and the
 * scatter of its results back to each caller.
 *
 * Owns: the rule that decides which waiting calls share a request (see
 * client_internal.h). Invariants: a call is in exactly one place (queue,
 * one slice, or done); slices cover [0, request->events) in order without
 * gaps; a call's events are never split; nothing is appended after an event
 * that carries LINKED. Pure functions: the caller holds the client's lock.
 */
#include "client_internal.h"

#include <errno.h>
#include <string.h>

void skuld__queue_push(struct skuld__queue *queue, struct skuld__call *call)
{
	call->next = NULL;
	if (queue->tail != NULL)
		queue->tail->next = call;
	else
		queue->head = call;
	queue->tail = call;
	queue->length++;
	call->where = SKULD__CALL_QUEUED;
}

void skuld__queue_remove(struct skuld__queue *queue, struct skuld__call *call)
{
	struct skuld__call *previous = NULL;
	struct skuld__call *cursor = queue->head;
	uint32_t steps = 0;

	while (cursor != NULL && cursor != call) {
		SKULD__ASSERT(steps++ <= queue->length);
		previous = cursor;
		cursor = cursor->next;
	}
	SKULD__ASSERT(cursor == call);
	if (previous != NULL)
		previous->next = call->next;
	else
		queue->head = call->next;
	if (queue->tail == call)
		queue->tail = previous;
	call->next = NULL;
	SKULD__ASSERT(queue->length > 0);
	queue->length--;
}

static int call_ends_open_chain(const struct skuld__call *call)
{
	return call->count > 0 && (call->events[call->count - 1].flags & SKULD_EVENT_LINKED) != 0;
}

/* Takes a non-SUBMIT call alone. */
static uint32_t take_single(struct skuld__queue *queue, struct skuld__request *request)
{
	struct skuld__call *call = queue->head;

	skuld__queue_remove(queue, call);
	call->where = SKULD__CALL_INFLIGHT;
	request->operation = call->operation;
	request->events = 0;
	request->body_size = call->body_size;
	request->slices[0] = (struct skuld__slice){.call = call, .first = 0, .count = 0};
	request->slices_len = 1;
	request->active = 1;
	return 1;
}

uint32_t skuld__batch_take(struct skuld__queue *queue, struct skuld__request *request,
                           struct skuld_event *body, uint32_t events_max,
                           struct skuld__call **rejected)
{
	SKULD__ASSERT(!request->active);
	SKULD__ASSERT(events_max > 0 && request->slices_max > 0);
	*rejected = NULL;
	if (queue->head == NULL)
		return 0;
	if (queue->head->operation != SKULD_OP_SUBMIT)
		return take_single(queue, request);
	if (queue->head->count > events_max) {
		struct skuld__call *call = queue->head;

		skuld__queue_remove(queue, call);
		call->status = -EMSGSIZE;
		call->where = SKULD__CALL_DONE;
		*rejected = call;
		return 0;
	}

	uint32_t taken = 0;
	uint32_t events = 0;
	uint32_t bound = queue->length;
	struct skuld__call *call = queue->head;

	request->operation = SKULD_OP_SUBMIT;
	for (uint32_t step = 0; step < bound && call != NULL; step++) {
		struct skuld__call *next = call->next;

		if (call->operation == SKULD_OP_SUBMIT) {
			if (events + call->count > events_max || taken == request->slices_max)
				break;
			skuld__queue_remove(queue, call);
			call->where = SKULD__CALL_INFLIGHT;
			memcpy(body + events, call->events,
			       (size_t)call->count * sizeof(struct skuld_event));
			request->slices[taken] = (struct skuld__slice){
			        .call = call, .first = events, .count = call->count};
			taken++;
			events += call->count;
			if (call_ends_open_chain(call))
				break;
		}
		call = next;
	}
	SKULD__ASSERT(taken > 0);
	request->events = events;
	request->slices_len = taken;
	request->active = 1;
	return taken;
}

uint64_t skuld__batch_scatter(struct skuld__request *request, const struct skuld_result *results)
{
	uint64_t replayed = 0;

	SKULD__ASSERT(request->active && request->operation == SKULD_OP_SUBMIT);
	for (uint32_t s = 0; s < request->slices_len; s++) {
		struct skuld__slice *slice = &request->slices[s];

		SKULD__ASSERT(slice->first + slice->count <= request->events);
		for (uint32_t i = 0; i < slice->count; i++) {
			const struct skuld_result *result = &results[slice->first + i];

			SKULD__ASSERT(result->index == slice->first + i);
			if (result->flags & SKULD_RESULT_REPLAYED)
				replayed++;
			if (slice->call != NULL) {
				slice->call->results[i] = *result;
				slice->call->results[i].index = i;
			}
		}
		if (slice->call != NULL) {
			slice->call->status = 0;
			slice->call->where = SKULD__CALL_DONE;
		}
	}
	return replayed;
}

void skuld__batch_fail(struct skuld__request *request, int status)
{
	for (uint32_t s = 0; s < request->slices_len; s++) {
		struct skuld__call *call = request->slices[s].call;

		if (call != NULL) {
			call->status = status;
			call->where = SKULD__CALL_DONE;
		}
	}
}
