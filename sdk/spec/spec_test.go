package spec

import "testing"

// An error's code is not repeated when its message already starts with it
// (a plugin that wrapped a coded error with the same code).
func TestErrorCodeNotDoubled(t *testing.T) {
	for _, c := range []struct {
		e    Error
		want string
	}{
		{Error{Code: "Timeout", Message: "no answer"}, "Timeout: no answer"},
		{Error{Code: "Timeout", Message: "Timeout: no answer"}, "Timeout: no answer"},
		{Error{Code: "Timeout", Message: "TimeoutX: no answer"}, "Timeout: TimeoutX: no answer"},
		{Error{Message: "plain"}, "plain"},
		{Error{Code: "Only"}, "Only"},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.e, got, c.want)
		}
	}
}
