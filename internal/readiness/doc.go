// Package readiness calls a function when a socket has data to read, so a
// server holding many idle connections needs no goroutine waiting on each.
//
// A goroutine parked in a read costs its stack, 4 KiB at least and 8 KiB
// once grown, for the connection's whole life; on a WebSocket node most
// connections are silent most of the time, so that stack is most of what
// a connection costs. Here one goroutine waits on every registered socket
// (epoll on Linux) and starts the registered function in a new goroutine
// only when its socket becomes readable. Each registration is one-shot:
// after an event nothing more is reported until the owner has read what it
// wanted and calls Rearm. Readiness is level-triggered, so data that
// arrived while the owner was busy is reported again right after Rearm.
//
// The owner tells the Watch before it closes the socket (Stop), so that
// its function runs once more and sees the end. A registration is changed
// only through the socket's RawConn, never by a descriptor number kept
// from before: a socket closed by someone else gives its number up at
// once, and a new connection may already have it.
package readiness
