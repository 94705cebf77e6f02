package closest

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/matchfn"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
)

// cand is "id:skill" or "id:skill:p1+p2" (a party); waited is 0.
func request(teams, size int, cands ...string) matchfn.Request {
	req := matchfn.Request{Mode: matchfn.Mode{Name: "m", Teams: teams, TeamSize: size}, Region: "eu", Tier: "gold"}
	for _, c := range cands {
		f := strings.Split(c, ":")
		skill, _ := strconv.Atoi(f[1])
		players := []string{"p" + f[0]}
		if len(f) == 3 {
			players = strings.Split(f[2], "+")
		}
		req.Candidates = append(req.Candidates, matchfn.Candidate{TicketID: f[0], Players: players, Skill: skill})
	}
	return req
}

func TestPropose(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		req    matchfn.Request
		spread rules.Widening
		want   []string // proposals as Proposal.String
	}{
		{"1v1 pairs the closest skills", request(2, 1, "a:1000", "b:1500", "c:1010", "d:1490"), DefaultSpread,
			[]string{"c | a", "b | d"}},
		{"an odd one out waits", request(2, 1, "a:1000", "b:1005", "c:1010"), DefaultSpread, []string{"b | a"}},
		{"too far apart: none", request(2, 1, "a:1000", "b:1150"), DefaultSpread, nil},
		{"too far apart at first, not after a wait", func() matchfn.Request {
			r := request(2, 1, "a:1000", "b:1150")
			r.Candidates[1].WaitedMS = 2000
			return r
		}(), DefaultSpread, []string{"b | a"}},
		{"2v2 balanced", request(2, 2, "a:1000", "b:1060", "c:1030", "d:1090"), DefaultSpread,
			[]string{"d,a | b,c"}},
		{"a party stays on one team", request(2, 2, "duo:1050:x+y", "a:1000", "b:1090"), DefaultSpread,
			[]string{"duo | b,a"}},
		{"a party too big for a team is left out", request(2, 2, "trio:1100:x+y+z", "a:1000", "b:1010", "c:1020", "d:1030"), DefaultSpread,
			[]string{"d,a | c,b"}},
		{"two parties of two cannot fill 2v2 with a third", request(2, 2, "d1:1000:a+b", "d2:1001:c+d", "d3:1002:e+f"), DefaultSpread,
			[]string{"d2 | d1"}},
		{"one player never twice in a match", request(2, 1, "a:1000:x", "a2:1001:x", "b:1002"), DefaultSpread,
			[]string{"b | a"}},
		{"free-for-all", request(4, 1, "a:1000", "b:1001", "c:1002", "d:1003", "e:1004"), DefaultSpread,
			[]string{"d | c | b | a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := Propose(tc.req, tc.spread)
			var got []string
			for _, p := range rep.Matches {
				got = append(got, p.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("proposals = %q, want %q", got, tc.want)
			}
			for i, err := range matchfn.CheckReply(&tc.req, &rep) {
				if err != nil {
					t.Errorf("proposal %d refused: %v", i, err)
				}
			}
		})
	}
}

// Whatever the pool, every proposal passes the matcher's checks.
func FuzzPropose(f *testing.F) {
	f.Add([]byte{2, 1, 10, 20, 30, 40}, uint8(2), uint8(2))
	f.Fuzz(func(t *testing.T, skills []byte, teams, size uint8) {
		m := matchfn.Mode{Name: "m", Teams: int(teams%5) + 2, TeamSize: int(size%4) + 1}
		req := matchfn.Request{Mode: m}
		for i, s := range skills {
			id := strconv.Itoa(i)
			players := []string{"p" + id}
			for k := range int(s % 3) {
				players = append(players, "p"+id+"-"+strconv.Itoa(k))
			}
			if s%7 == 0 && i > 0 {
				players[0] = "p" + strconv.Itoa(i-1) // a player on two tickets
			}
			req.Candidates = append(req.Candidates, matchfn.Candidate{TicketID: "t" + id, Players: players, Skill: int(s) * 10, WaitedMS: int64(s) * 100})
		}
		rep := Propose(req, DefaultSpread)
		for i, err := range matchfn.CheckReply(&req, &rep) {
			if err != nil {
				t.Fatalf("proposal %d (%s) refused: %v", i, rep.Matches[i], err)
			}
		}
	})
}
