// Package client is the Go client for wsdirect.
//
// A wsdirect connection takes two steps: the client asks the auth service
// (POST /v1/connect) for a node and a single-use token, then opens the
// WebSocket straight to that node, presenting the token. Dial does both once.
// Managed keeps one logical connection alive across node failures, drains and
// refusals: every reconnect goes back to auth for a fresh node and token,
// with full-jitter exponential backoff, and never reuses an old token.
//
// A JavaScript client for browsers lives under client/js.
package client
