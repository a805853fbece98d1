package adapters

import (
	"errors"
	"fmt"
	"testing"
)

// TestCollectFollowsEveryPage: lists are complete, and an error on any
// page is the list's error (never a silently short list).
func TestCollectFollowsEveryPage(t *testing.T) {
	pages := map[string][]int{"": {1, 2}, "p2": {3}, "p3": {4, 5}}
	next := map[string]string{"": "p2", "p2": "p3", "p3": ""}
	got, err := collect(func(token string) ([]int, string, error) { return pages[token], next[token], nil })
	if err != nil || fmt.Sprint(got) != "[1 2 3 4 5]" {
		t.Fatalf("got %v, %v", got, err)
	}
	boom := errors.New("page 2 refused")
	got, err = collect(func(token string) ([]int, string, error) {
		if token == "p2" {
			return nil, "", boom
		}
		return pages[token], next[token], nil
	})
	if !errors.Is(err, boom) || got != nil {
		t.Fatalf("got %v, %v; want the error and no list", got, err)
	}
}
