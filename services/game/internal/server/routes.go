package server

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// Handler serves the players' paths and the operators' on one listener
// (PlayersHandler and OpsHandler): the game server's -ops-addr unset.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.playerRoutes(mux)
	s.opsRoutes(mux)
	return mux
}

// PlayersHandler serves the players: the play page and the WebSocket
// (the paths of pkg/play).
func (s *Server) PlayersHandler() http.Handler {
	mux := http.NewServeMux()
	s.playerRoutes(mux)
	return mux
}

// OpsHandler serves /healthz, /metrics and /status (play.StatusPath, which
// the allocator's local backend reads): the open match ids and the ids of
// the players seated in rooms asking for backfill, which a player reaching
// the game server's port has no business reading (-ops-addr).
func (s *Server) OpsHandler() http.Handler {
	mux := http.NewServeMux()
	s.opsRoutes(mux)
	return mux
}

func (s *Server) playerRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+play.PagePath, func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, s.pageFS, "play.html")
	})
	mux.HandleFunc("GET "+play.SocketPath, s.serveWS)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("quickmatch game server: open the URL of your assignment\n"))
	})
}

func (s *Server) opsRoutes(mux *http.ServeMux) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET "+play.StatusPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Status())
	})
}
