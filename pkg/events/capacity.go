package events

import "time"

// Capacity is what an allocator knows about the game-server capacity of one
// region. Allocators put it in the capacity bucket (key: region) every few
// seconds; frontends watch the bucket and stop queueing tickets for a
// region that has no room left.
type Capacity struct {
	SchemaVersion int    `json:"schema_version"`
	Region        string `json:"region"`
	// FreeRooms is how many more matches the region can host now.
	FreeRooms int `json:"free_rooms"`
	// TotalRooms is the region's room count when every server is up.
	TotalRooms int `json:"total_rooms"`
	// Servers is how many game servers answered; ReadyServers of them host
	// nothing yet, AllocatedServers host at least one match.
	Servers          int       `json:"servers"`
	ReadyServers     int       `json:"ready_servers"`
	AllocatedServers int       `json:"allocated_servers"`
	At               time.Time `json:"at"`
}

// Cancel tells matchers that a ticket was cancelled, so they drop it from
// their pool at once. It is a hint published on core NATS: the claim made
// before it is what guarantees that a cancelled ticket is never matched.
type Cancel struct {
	SchemaVersion int    `json:"schema_version"`
	TicketID      string `json:"ticket_id"`
	Region        string `json:"region"`
	Tier          string `json:"tier"`
	Mode          string `json:"mode"`
}

// DecodeCancel reads a cancel notice strictly.
func DecodeCancel(data []byte) (Cancel, error) {
	var c Cancel
	if err := DecodeStrict("cancel", data, &c); err != nil {
		return Cancel{}, err
	}
	fe := &fieldErrors{kind: "cancel"}
	if err := checkToken(c.TicketID); err != nil {
		fe.add("ticket_id", "%v", err)
	}
	return c, fe.err()
}
