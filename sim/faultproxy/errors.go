package faultproxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// ErrorKind is the kind of error a rule injects.
type ErrorKind string

const (
	// Throttle answers as the service does when it throttles: 400 Throttling
	// (query, rest-xml), 400 ThrottlingException (JSON), 429 (rest-json),
	// 503 RequestLimitExceeded (EC2), 503 SlowDown (S3).
	Throttle ErrorKind = "throttle"
	// ServerError answers 500 InternalFailure (InternalError for S3).
	ServerError ErrorKind = "5xx"
	// Unavailable answers 503 ServiceUnavailable (SlowDown for S3).
	Unavailable ErrorKind = "503"
)

type errorShape struct {
	status int
	code   string
	msg    string
}

func shapeFor(kind ErrorKind, c Call) errorShape {
	switch kind {
	case ServerError:
		if c.Protocol == protoS3 {
			return errorShape{500, "InternalError", "We encountered an internal error. Please try again."}
		}
		return errorShape{500, "InternalFailure", "The request processing has failed because of an unknown error, exception or failure."}
	case Unavailable:
		if c.Protocol == protoS3 {
			return errorShape{503, "SlowDown", "Please reduce your request rate."}
		}
		return errorShape{503, "ServiceUnavailable", "The service is unavailable. Please try again later."}
	default: // Throttle
		switch c.Protocol {
		case protoS3:
			return errorShape{503, "SlowDown", "Please reduce your request rate."}
		case protoEC2:
			return errorShape{503, "RequestLimitExceeded", "Request limit exceeded."}
		case protoJSON, protoCBOR:
			return errorShape{400, "ThrottlingException", "Rate exceeded"}
		case protoRESTJSON:
			return errorShape{429, "ThrottlingException", "Rate exceeded"}
		default:
			return errorShape{400, "Throttling", "Rate exceeded"}
		}
	}
}

// writeError writes an AWS-shaped error for c's protocol.
func writeError(w http.ResponseWriter, kind ErrorKind, c Call, rng func() uint64) {
	e := shapeFor(kind, c)
	reqID := requestID(rng)
	h := w.Header()
	h.Set("X-Amzn-RequestId", reqID)
	h.Set("X-Amz-Request-Id", reqID)
	if e.status == 503 || e.status == 429 {
		h.Set("Retry-After", "1")
	}
	switch c.Protocol {
	case protoCBOR:
		h.Set("Content-Type", "application/cbor")
		h.Set("Smithy-Protocol", "rpc-v2-cbor")
		w.WriteHeader(e.status)
		_, _ = w.Write(cborStringMap([][2]string{{"__type", e.code}, {"message", e.msg}}))
	case protoJSON, protoRESTJSON:
		h.Set("Content-Type", "application/x-amz-json-1.1")
		h.Set("X-Amzn-ErrorType", e.code)
		w.WriteHeader(e.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.code, "message": e.msg})
	case protoEC2:
		h.Set("Content-Type", "text/xml")
		w.WriteHeader(e.status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+
			`<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>`,
			e.code, e.msg, reqID)
	case protoS3:
		h.Set("Content-Type", "application/xml")
		w.WriteHeader(e.status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+
			`<Error><Code>%s</Code><Message>%s</Message><RequestId>%s</RequestId><HostId>%s</HostId></Error>`,
			e.code, e.msg, reqID, reqID)
	default: // query and rest-xml share the ErrorResponse shape
		typ := "Sender"
		if e.status >= 500 {
			typ = "Receiver"
		}
		h.Set("Content-Type", "text/xml")
		w.WriteHeader(e.status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+
			`<ErrorResponse><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`,
			typ, e.code, e.msg, reqID)
	}
}

func requestID(rng func() uint64) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	for i := range 32 {
		if i == 8 || i == 12 || i == 16 || i == 20 {
			b.WriteByte('-')
		}
		b.WriteByte(hex[rng()%16])
	}
	return b.String()
}

// cborStringMap encodes a map of strings to strings in CBOR (RFC 8949): enough for
// a Smithy RPC v2 error body.
func cborStringMap(kv [][2]string) []byte {
	var b []byte
	b = cborHead(b, 5, uint64(len(kv)))
	for _, p := range kv {
		for _, s := range p {
			b = cborHead(b, 3, uint64(len(s)))
			b = append(b, s...)
		}
	}
	return b
}

func cborHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n < 1<<8:
		return append(b, m|24, byte(n))
	case n < 1<<16:
		return append(b, m|25, byte(n>>8), byte(n))
	case n < 1<<32:
		return append(b, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	default:
		return append(b, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}
