package knob

import (
	"testing"
	"time"
)

func TestKnobs(t *testing.T) {
	t.Setenv("KNOB_TEST_N", "7")
	t.Setenv("KNOB_TEST_EMPTY", "")
	t.Setenv("KNOB_TEST_SECS", "2.5")
	t.Setenv("KNOB_TEST_DUR", "1m")
	n, empty := 1, 2
	if err := Ints(map[string]*int{"KNOB_TEST_N": &n, "KNOB_TEST_EMPTY": &empty}); err != nil || n != 7 || empty != 2 {
		t.Fatalf("Ints: n=%d empty=%d err=%v", n, empty, err)
	}
	var s, d time.Duration
	if err := Seconds(map[string]*time.Duration{"KNOB_TEST_SECS": &s}); err != nil || s != 2500*time.Millisecond {
		t.Fatalf("Seconds: %s %v", s, err)
	}
	if err := Durations(map[string]*time.Duration{"KNOB_TEST_DUR": &d}); err != nil || d != time.Minute {
		t.Fatalf("Durations: %s %v", d, err)
	}
	if got := Env("KNOB_TEST_EMPTY", "def"); got != "def" {
		t.Fatalf("Env of an empty variable = %q", got)
	}
	t.Setenv("KNOB_TEST_N", "x")
	if err := Ints(map[string]*int{"KNOB_TEST_N": &n}); err == nil || err.Error() != `KNOB_TEST_N="x": strconv.Atoi: parsing "x": invalid syntax` {
		t.Fatalf("Ints of x: %v", err)
	}
	if err := Durations(map[string]*time.Duration{"KNOB_TEST_SECS": &d}); err == nil {
		t.Fatal("Durations took a bare number")
	}
}
