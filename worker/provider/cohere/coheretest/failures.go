package coheretest

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Failure is an HTTP error answer: a status, extra headers and the
// message of Cohere's {"id", "message"} body.
type Failure struct {
	Status  int
	Header  http.Header
	Message string
}

// BadRequest is a 400 "invalid request: …".
func BadRequest(detail string) Failure {
	return Failure{Status: http.StatusBadRequest, Message: "invalid request: " + detail}
}

// TooManyTokens is the 400 Cohere answers a prompt longer than the model's
// window.
func TooManyTokens(prompt, window int) Failure {
	return Failure{Status: http.StatusBadRequest, Message: fmt.Sprintf(
		"too many tokens: size limit exceeded by %d tokens. Try using shorter or fewer inputs.", prompt-window)}
}

// ModelNotFound is the 404 for a model the key cannot use.
func ModelNotFound(model string) Failure {
	return Failure{Status: http.StatusNotFound, Message: fmt.Sprintf(
		"model '%s' not found, make sure the correct model ID was used and that you have access to the model.", model)}
}

// RateLimited is the 429 of a trial key over its calls per minute;
// retryAfter > 0 adds a Retry-After header in whole seconds.
func RateLimited(retryAfter time.Duration) Failure {
	f := Failure{Status: http.StatusTooManyRequests, Message: "You are using a Trial key, which is limited to 10 API calls / minute. " +
		"You can continue to use the Trial key for free or upgrade to a Production key with higher rate limits at " +
		"'https://dashboard.cohere.com/api-keys'."}
	if retryAfter > 0 {
		f.Header = http.Header{"Retry-After": {strconv.Itoa(int((retryAfter + time.Second - 1) / time.Second))}}
	}
	return f
}

// PaymentRequired is the 402 of an account past its billing limit.
func PaymentRequired() Failure {
	return Failure{Status: http.StatusPaymentRequired, Message: "Please add or update your payment method at " +
		"https://dashboard.cohere.com/billing?tab=payment to continue"}
}

// Forbidden is the 403 of a key without access to the endpoint.
func Forbidden() Failure {
	return Failure{Status: http.StatusForbidden, Message: "You are not authorized to access this resource."}
}

// BlockedToken is the 498 of a request or reply with a deny-listed token.
func BlockedToken() Failure {
	return Failure{Status: 498, Message: "blocked input: please adjust your prompt and try again, as it may be a potential violation of our Usage Guidelines"}
}

// ServerError is a 5xx (500, 503, 504, …).
func ServerError(status int) Failure {
	msg := "internal server error, this has been reported to our developers"
	switch status {
	case http.StatusServiceUnavailable:
		msg = "service unavailable, please try again later"
	case http.StatusGatewayTimeout:
		msg = "request timed out, please try again later"
	}
	return Failure{Status: status, Message: msg}
}
