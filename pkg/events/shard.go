package events

// Shard is one region and tier: the unit of matching and of ownership. Its
// tickets arrive on [Subjects.Ticket], its visitors on [Subjects.Offer], and
// one matcher worker at a time holds its lease and consumes both
// ([ShardConsumer], [OfferConsumer]).
type Shard struct{ Region, Tier string }

// String is the shard as its lease key and logs write it: "<region>.<tier>".
func (s Shard) String() string { return s.Region + "." + s.Tier }

// Shards lists every shard of the topology.
func (t Topology) Shards() []Shard {
	regions, tiers := t.Regions, t.Tiers
	if len(regions) == 0 {
		regions = DefaultRegions
	}
	if len(tiers) == 0 {
		tiers = DefaultTiers
	}
	var out []Shard
	for _, r := range regions {
		for _, tr := range tiers {
			out = append(out, Shard{Region: r, Tier: tr.Name})
		}
	}
	return out
}
