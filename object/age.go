package object

import (
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
)

// Age is the AGE column of kubectl: the time from createUnixNano to now in
// two significant units at most (45s, 5m30s, 3h, 4d). An unset creation time
// gives "<unknown>", like kubectl.
func Age(createUnixNano int64, now time.Time) string {
	if createUnixNano == 0 {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(time.Unix(0, createUnixNano)))
}
