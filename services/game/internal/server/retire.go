package server

import (
	"context"
	"math"
	"strings"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// Retiring. Agones never removes the annotation an allocation adds
// (pkg/agones/room.go), and Kubernetes refuses to write an object whose
// annotations, keys plus values, exceed 256 KiB. A server reused for
// hours would get there: every allocation onto it would then be refused
// (422) while the allocator went on choosing it. So each GameServer this
// process reads (the watch, a join that beats it, Ready, the end of the
// last room) is measured, and at Config.RetireAnnotationBytes the server
// retires:
//
//   - it labels itself agones.RetiringLabel, through the SDK, retried,
//     and again on a later read if that failed (the allocator's
//     selectors and capacity reports pass over a server so labelled);
//   - it goes on hosting its rooms, and any allocation that raced the
//     label in;
//   - after its last room it asks Agones to shut it down instead of
//     going back to Ready, Reuse or not; a process that starts retiring
//     with no live room shuts down instead of going Ready.
//
// The label outlives the process: one restarted in place on a labelled
// GameServer is retiring from the label alone, whatever its threshold.

// annotationLimit is Kubernetes' cap on an object's annotations
// (apimachinery's TotalAnnotationSizeLimitB).
const annotationLimit = 256 << 10

// largestRoomAnnotation is the most one allocation adds: the annotation
// of a room of play.MaxPlayers players, each its own team (a
// free-for-all: the most brackets), with the longest ids the contract
// allows (64 bytes: events.CheckID, for players and modes) and the
// longest match id, the backfill request such a room may write later
// (agones.BackfillAnnotation: a seat free on every team, the largest
// Ask), and its kept seats (agones.SeatsAnnotation: every player seated,
// and as many let go). A threshold must leave at least this under the
// limit, or the allocation that crosses it may be the one refused.
var largestRoomAnnotation = func() int {
	r := agones.Room{Mode: strings.Repeat("m", 64), AcceptsBackfill: true}
	for i := range play.MaxPlayers {
		id := strings.Repeat("p", 62) + string(rune('0'+i/10)) + string(rune('0'+i%10))
		r.Teams = append(r.Teams, []string{id})
	}
	matchID := strings.Repeat("m", agones.MaxMatchIDLen)
	req := play.Backfill{MatchID: matchID, Ask: math.MaxInt, Seats: make([]int, play.MaxPlayers)}
	for i := range req.Seats {
		req.Seats[i] = 1
	}
	seats := map[string]string{}
	for _, p := range r.Players() {
		seats[p] = strings.Repeat("f", agones.KeyDigestLen)
		seats[strings.Replace(p, "p", "g", 1)] = agones.LetGo
	}
	return len(agones.MatchAnnotationPrefix+matchID) + len(agones.EncodeRoom(r)) +
		len(agones.BackfillAnnotation(matchID)) + len(agones.EncodeBackfill(req)) +
		len(agones.SeatsAnnotation(matchID)) + len(agones.EncodeSeats(seats))
}()

// annotationBytes is the size of annotations as Kubernetes counts it
// against annotationLimit: every key and every value, in bytes.
func annotationBytes(a map[string]string) int {
	n := 0
	for k, v := range a {
		n += len(k) + len(v)
	}
	return n
}

// gameServer reads the GameServer from the sidecar and observes it.
func (s *Server) gameServer(ctx context.Context) (sdk.GameServer, error) {
	gs, err := s.cfg.SDK.GameServer(ctx)
	if err == nil {
		s.observe(gs)
	}
	return gs, err
}

// observe retires the server if gs is labelled retiring or its
// annotations have reached RetireAnnotationBytes, and labels it unless
// gs is labelled already or a label is under way or done.
func (s *Server) observe(gs sdk.GameServer) {
	labelled := gs.ObjectMeta.Labels[agones.RetiringLabel] == "true"
	size := annotationBytes(gs.ObjectMeta.Annotations)
	if !labelled && size < s.cfg.RetireAnnotationBytes {
		return
	}
	s.mu.Lock()
	first := !s.retiring
	s.retiring = true
	label := !labelled && !s.labelling && !s.draining
	if label {
		s.labelling = true
		s.wg.Add(1) // Drain waits for it: nothing of this process calls the sidecar after
	}
	s.mu.Unlock()
	if first {
		s.log.Warn("agones: retiring: no more allocations; shutting down after the last room",
			"annotation_bytes", size, "retire_annotation_bytes", s.cfg.RetireAnnotationBytes, "labelled", labelled)
	}
	if label {
		go func() {
			defer s.wg.Done()
			s.label()
		}()
	}
}

// label sets the retiring label. If the sidecar keeps refusing, the next
// GameServer read tries again; meanwhile allocations may still come, and
// their rooms are hosted.
func (s *Server) label() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.retry(ctx, func() error { return s.cfg.SDK.SetLabel(ctx, agones.RetiringKey, "true") })
	if err != nil {
		s.log.Error("agones: label retiring; again on the next read of the game server", "err", err)
		s.mu.Lock()
		s.labelling = false
		s.mu.Unlock()
		return
	}
	s.log.Info("agones: labelled retiring", "label", agones.RetiringLabel)
}

// isRetiring says whether the server has retired.
func (s *Server) isRetiring() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retiring
}
