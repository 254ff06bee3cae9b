// Package jsclient ships the wsdirect browser client: wsdirect.js, an ES
// module with no dependencies that does the auth-then-connect flow with
// full-jitter reconnects through auth, and a small demo page that uses it.
// Handler serves both, so wsdirect-auth can offer the demo on its own origin
// (no CORS needed for POST /v1/connect; the WebSocket to the node is
// cross-origin, which nodes accept because the token is the credential).
//
// The JavaScript sources live next to this file; the module's unit tests run
// under node (test/*.test.mjs), and internal/testing/e2e/browser_test.go
// drives the demo page in headless Chromium against an in-process cluster.
package jsclient
