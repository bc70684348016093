// Package jsonscan finds and checks the JSON values of a body in place,
// without reflection and without allocating: Value returns where a value
// ends (checking its syntax as encoding/json does), an Object reads an
// object's members as raw bytes, and Unquote decodes a string, returning a
// slice of the input when it holds no escape. /v1/events uses it to split a
// body into events (httpapi) and to read an event (the example server's
// decoder).
//
// # Concurrency
//
// The functions are safe for concurrent use; an Object is not.
//
// # Errors
//
// A malformed input gets a *SyntaxError with the offset of the offending
// byte in the slice given; Truncated reports whether the input ended too
// soon.
package jsonscan
