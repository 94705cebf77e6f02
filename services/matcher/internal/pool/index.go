package pool

import (
	"hash/maphash"
	"iter"
	"math"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
)

// BucketWidth is the skill range of one index bucket.
const BucketWidth = 25

const buckets = events.MaxSkill/BucketWidth + 1

type list struct{ head, tail *Entry }

// sublist holds the tickets of one skill bucket and one class, oldest
// first. A class is the tickets with the same values for every equal rule
// of the mode (platform, a tag) and the same band of its first distance
// rule (level): two classes that differ in an equal rule, or lie two bands
// apart or more, never fit until the rule is dropped, so a scan judges a
// whole sublist by its oldest ticket. A mode without either rule has one
// class.
type sublist struct {
	list
	// key is a member's Values (they share the equal rules' values).
	key    rules.Values
	band   band
	hash   uint64
	bucket int32
	at     int32    // index in Pool.buckets[bucket]
	next   *sublist // another class with the same bucket and hash
}

// band is a ticket's value for the mode's first distance rule in steps of
// the rule's widest limit (Limit.Max, at least 1): values k bands apart
// differ by more than k-1 steps, so tickets two bands apart or more never
// fit while the rule holds. ok is false when the mode has no distance
// rule or the ticket no value for it (then the rule does not hold it).
type band struct {
	n  int32
	ok bool
}

// distanceRule is the position of m's first distance rule and the width
// of its bands, or -1.
func distanceRule(m *rules.Mode) (int, float64) {
	for i, r := range m.Rules {
		if r.Kind == rules.RuleDistance && r.Limit != nil {
			return i, float64(max(r.Limit.Max, 1))
		}
	}
	return -1, 0
}

// bandOf is the band of a ticket with attributes a, for m.
func bandOf(m *rules.Mode, a *events.Attributes) band {
	i, width := distanceRule(m)
	if i < 0 || a == nil {
		return band{}
	}
	v, ok := a.Numbers[m.Rules[i].Attribute]
	if !ok || math.IsNaN(v) {
		return band{}
	}
	return band{n: int32(min(max(math.Floor(v/width), math.MinInt32), math.MaxInt32)), ok: true}
}

type classKey struct {
	bucket int32
	hash   uint64
}

// index is the skill buckets, each split by class. Every waiting ticket is
// in exactly one sublist. classes finds a bucket's sublist of a class
// when the mode has equal or distance rules; without, a bucket has one
// sublist.
type index struct {
	equal   []int // the mode's equal rules, by position in Values
	dist    int   // the mode's first distance rule, or -1
	width   float64
	buckets [buckets][]*sublist
	classes map[classKey]*sublist
	seed    maphash.Seed
}

func newIndex(m *rules.Mode) index {
	x := index{equal: equalRules(m), classes: map[classKey]*sublist{}, seed: maphash.MakeSeed()}
	x.dist, x.width = distanceRule(m)
	return x
}

// classed reports whether the mode splits a bucket into classes.
func (x *index) classed() bool { return len(x.equal) > 0 || x.dist >= 0 }

func equalRules(m *rules.Mode) []int {
	var eq []int
	for i, r := range m.Rules {
		if r.Kind == rules.RuleEqual {
			eq = append(eq, i)
		}
	}
	return eq
}

func bucketOf(skill int) int32 {
	return int32(min(max(skill, 0), events.MaxSkill) / BucketWidth)
}

// sameClass compares the equal rules' values and the bands. An equal rule
// holds between two tickets exactly when their compiled values are ==
// (rules.Mode.Fits), so == is the class's test too.
func (x *index) sameClass(a rules.Values, ab band, b rules.Values, bb band) bool {
	if ab != bb {
		return false
	}
	for _, i := range x.equal {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (x *index) classHash(v rules.Values, b band) uint64 {
	h := maphash.Comparable(x.seed, b)
	for _, i := range x.equal {
		h = (h ^ maphash.Comparable(x.seed, v[i])) * 0x100000001b3
	}
	return h
}

// link appends e to its bucket's sublist of its class, making one if
// needed. e.Values are compiled for the index's mode.
func (x *index) link(e *Entry) {
	k := classKey{bucket: bucketOf(e.Skill)}
	b := &x.buckets[k.bucket]
	var s *sublist
	if !x.classed() {
		if len(*b) > 0 {
			s = (*b)[0] // one class: no lookup
		}
	} else {
		k.hash = x.classHash(e.Values, e.band)
		s = x.classes[k]
		for s != nil && !x.sameClass(s.key, s.band, e.Values, e.band) {
			s = s.next
		}
	}
	if s == nil {
		s = &sublist{key: e.Values, band: e.band, hash: k.hash, bucket: k.bucket, at: int32(len(*b))}
		*b = append(*b, s)
		if x.classed() {
			s.next = x.classes[k]
			x.classes[k] = s
		}
	}
	e.sub, e.bprev, e.bnext = s, s.tail, nil
	if s.tail != nil {
		s.tail.bnext = e
	} else {
		s.head = e
	}
	s.tail = e
}

// unlink takes e out of its sublist, and an emptied sublist out of the
// index: a bucket holds only classes present, so a scan never walks
// classes that left.
func (x *index) unlink(e *Entry) {
	s := e.sub
	if e.bprev != nil {
		e.bprev.bnext = e.bnext
	} else {
		s.head = e.bnext
	}
	if e.bnext != nil {
		e.bnext.bprev = e.bprev
	} else {
		s.tail = e.bprev
	}
	e.sub, e.bprev, e.bnext = nil, nil, nil
	if s.head != nil {
		return
	}
	b := &x.buckets[s.bucket]
	last := len(*b) - 1
	(*b)[s.at] = (*b)[last]
	(*b)[s.at].at = s.at
	(*b)[last] = nil
	*b = (*b)[:last]
	if !x.classed() {
		return
	}
	k := classKey{bucket: s.bucket, hash: s.hash}
	if x.classes[k] == s {
		if s.next != nil {
			x.classes[k] = s.next
		} else {
			delete(x.classes, k)
		}
		return
	}
	for c := x.classes[k]; c != nil; c = c.next {
		if c.next == s {
			c.next = s.next
			return
		}
	}
}

// apart reports whether the tickets of sublist s can fit none of anchor's
// at the longer wait waited: they differ in an equal rule, or lie too
// many bands apart for the distance limit, and the rule is not dropped by
// then. A younger ticket of s (a shorter wait) keeps the rule and a
// narrower limit too.
func (p *Pool) apart(anchor *Entry, s *sublist, waited time.Duration) bool {
	if len(anchor.Values) != len(s.key) || anchor.compiled == nil {
		return false // not compiled for this mode: fits refuses each
	}
	held := func(r *rules.Rule) bool { return r.DropAfter <= 0 || waited < time.Duration(r.DropAfter) }
	for _, i := range p.idx.equal {
		if anchor.Values[i] != s.key[i] && held(&p.mode.Rules[i]) {
			return true
		}
	}
	if x := &p.idx; anchor.band.ok && s.band.ok && anchor.band.n != s.band.n {
		r := &p.mode.Rules[x.dist]
		k := abs(int(anchor.band.n) - int(s.band.n))
		return held(r) && float64(k-1)*x.width >= float64(r.Limit.At(waited))
	}
	return false
}

// candidates yields the waiting tickets that fit anchor at now (fits),
// nearest skill bucket first: the anchor's own bucket, then one bucket
// below and one above, and so on out to the widest window any ticket can
// have. Within a bucket, the classes of the anchor's band first (a
// neighbouring band holds fewer that fit: only those near its edge), then
// the others, each in the order they came; within a class, oldest first.
// The caller must not change the pool while it ranges.
func (p *Pool) candidates(anchor *Entry, now time.Time) iter.Seq[*Entry] {
	return func(yield func(*Entry) bool) {
		sc := scan{p: p, anchor: anchor, now: now, wa: anchor.Waited(now)}
		sc.aw = p.mode.Skill.At(sc.wa)
		// The widest any window can be bounds the search, and so does
		// the skill range: past its last bucket a step finds nothing.
		reach := min(max(sc.aw, p.mode.Skill.Max), events.MaxSkill-events.MinSkill)
		ab := int(bucketOf(anchor.Skill))
		for d := 0; d*BucketWidth <= reach+BucketWidth; d++ {
			// The closest skill a bucket d away can hold, from the anchor.
			sc.minDiff = max(0, (d-1)*BucketWidth)
			for _, side := range [2]int{-1, 1} {
				bi := ab + side*d
				if d == 0 && side == 1 || bi < 0 || bi >= buckets {
					continue
				}
				for _, own := range [2]bool{true, false} {
					for _, s := range p.idx.buckets[bi] {
						if (s.band == anchor.band) == own && !sc.list(s, yield) {
							return
						}
					}
				}
			}
		}
	}
}

// scan is one candidates search.
type scan struct {
	p       *Pool
	anchor  *Entry
	now     time.Time
	wa      time.Duration // the anchor's wait
	aw      int           // the anchor's skill window
	minDiff int           // the closest skill of the bucket scanned
}

// list yields the tickets of s that fit, oldest first, and reports
// whether to go on. It leaves s at its first ticket too young for the
// skill window to reach the bucket, or for the rules that keep its class
// from the anchor's to have dropped: the younger tickets behind it would
// not fit either. Those two stops keep a scan short whatever the pool
// size.
func (sc *scan) list(s *sublist, yield func(*Entry) bool) bool {
	p := sc.p
	for e := s.head; e != nil; e = e.bnext {
		if e == sc.anchor {
			continue
		}
		we := e.Waited(sc.now)
		if max(sc.aw, p.mode.Skill.At(we)) < sc.minDiff || p.apart(sc.anchor, s, max(sc.wa, we)) {
			return true
		}
		if p.fits(sc.anchor, e, sc.now) && !yield(e) {
			return false
		}
	}
	return true
}

// reindex rebuilds the buckets for the mode's equal rules, in arrival
// order.
func (p *Pool) reindex() {
	p.idx = newIndex(p.mode)
	for e := p.arrival.head; e != nil; e = e.anext {
		p.idx.link(e)
	}
}

// count is the number of sublists: tests check that emptied ones leave.
func (x *index) count() int {
	n := 0
	for b := range x.buckets {
		n += len(x.buckets[b])
	}
	return n
}
