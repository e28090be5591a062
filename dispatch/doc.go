// Package dispatch turns ready batches into Dagu DAG runs: for each rule it
// claims a batch of a queue under a lease, starts one run of a DAG through
// Dagu's REST API with a run id derived from the lease, keeps the lease alive
// while the run is active, and acks the batch when the run succeeds or nacks
// it (backoff, dead letters) when the run fails or is aborted.
//
// Message bodies never travel as run parameters: a run gets the queue, the
// lease token and the batch id, and a step reads the batch by token
// (`type: queue`, `action: get`). docs/dispatch.md is the user's guide.
package dispatch
