// Package batching owns the batch-assembly policy of daguq: when a batch of
// claimed messages is complete, and which messages go into it.
//
// A batch is ready when it holds MaxSize messages, when its payloads add up
// to MaxBytes, or when its oldest message has been ready for MaxWait,
// whichever comes first. With GroupByKey set, a batch holds messages of one
// group key only.
//
// The package is pure: it imports nothing else of this repository, touches
// no database and never reads the clock; every decision takes now as an
// argument. A consumer loop uses it like this:
//
//	acc, err := batching.NewAccumulator(policy, describe)
//	for {
//		acc.Add(claim(size - acc.Len())...) // leases stay valid while held
//		now := clock.Now()
//		if batch := acc.Take(now); batch != nil {
//			handle(batch)
//			continue
//		}
//		wait := pollInterval
//		if acc.Len() > 0 {
//			wait = min(wait, acc.Ready(now).Wait)
//		}
//		sleep(wait)
//	}
//
// On shutdown, Drain returns the held messages so that their leases can be
// released.
package batching
