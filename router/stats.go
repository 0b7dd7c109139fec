package router

import "sync/atomic"

// Stats are a router's counters since New, for metrics and tests.
type Stats struct {
	Read          int64 // entries delivered by XREADGROUP
	Reclaimed     int64 // entries claimed from idle consumers by XAUTOCLAIM
	Redelivered   int64 // served entries that had been delivered before: possible duplicate results
	Results       int64 // results written and acknowledged
	ModelErrors   int64 // of Results, those with the error field set
	Dead          int64 // entries written to the dead stream and acknowledged
	Acked         int64 // entries acknowledged (Results + Dead, less acks lost to a Redis restart)
	Abandoned     int64 // entries left pending for reclaim by a hard stop
	InFlight      int64 // entries read and not yet acknowledged, now
	InFlightHigh  int64 // the most InFlight has been: never above Config.InFlight
	WriteBatches  int64 // pipelines of results written: Results/WriteBatches is the batch size
	RedisErrors   int64 // failed Redis calls (each retried with backoff)
	GroupsCreated int64 // consumer groups created, including after a Redis restart
	Feedback      int64 // feedback entries handed to the model and acknowledged
}

type counters struct {
	read, reclaimed, redelivered, results, modelErrors, dead, acked, abandoned atomic.Int64
	inFlight, inFlightHigh, writeBatches, redisErrors, groupsCreated, feedback atomic.Int64
}

func (c *counters) addInFlight(n int64) {
	v := c.inFlight.Add(n)
	for {
		h := c.inFlightHigh.Load()
		if v <= h || c.inFlightHigh.CompareAndSwap(h, v) {
			return
		}
	}
}

func (c *counters) snapshot() Stats {
	return Stats{
		Read:          c.read.Load(),
		Reclaimed:     c.reclaimed.Load(),
		Redelivered:   c.redelivered.Load(),
		Results:       c.results.Load(),
		ModelErrors:   c.modelErrors.Load(),
		Dead:          c.dead.Load(),
		Acked:         c.acked.Load(),
		Abandoned:     c.abandoned.Load(),
		InFlight:      c.inFlight.Load(),
		InFlightHigh:  c.inFlightHigh.Load(),
		WriteBatches:  c.writeBatches.Load(),
		RedisErrors:   c.redisErrors.Load(),
		GroupsCreated: c.groupsCreated.Load(),
		Feedback:      c.feedback.Load(),
	}
}
