package matcher

import "github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"

// syncRules puts the worker's rule set in force in the runner's pools
// when a reload changed it (rules.Current.Watch, run by the worker):
//
//   - a new mode gets a pool;
//   - a mode still in the set gets its new rules (pool.SetMode), by
//     which its waiting tickets are judged from then on, and the offer
//     queue follows its new widening;
//   - a mode the new set removed keeps its pool and its old rules: its
//     waiting tickets stay until matched or expired (a sweep expires
//     them by the old max wait). New tickets of it are refused by the
//     intake, which checks against the new set; so is one of its
//     tickets redelivered from the stream (to a new owner of the
//     shard, say), which is dead-lettered and its players told, unless
//     a match holds its claim: that match is followed, as for any
//     ticket refused (intake.claimRefused).
//
// It runs on the runner's goroutine, before each ticket is read and at
// each sweep: a reload reaches every shard within a sweep, and a ticket
// the intake checked against a set always finds that set's pool.
func (r *runner) syncRules() {
	set := r.rules.Get()
	if set == r.set {
		return
	}
	first := r.set == nil
	r.set = set
	for _, name := range set.Modes() {
		m, _ := set.Mode(name)
		if p, ok := r.pools[name]; ok {
			p.SetMode(m)
		} else {
			r.pools[name] = pool.New(m)
		}
	}
	if !first {
		r.rescheduleOffers()
		r.log.Info("rule set in force", "modes", set.Modes())
	}
}
