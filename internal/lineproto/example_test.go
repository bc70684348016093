package lineproto_test

import (
	"fmt"
	"time"

	"github.com/hourglass-io/hourglass/internal/lineproto"
)

func ExampleDecode() {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	body := []byte("web,page=/pricing views=1i,ms=230 1767323040000\nweb,page=/pricing views=1i,ms=190 1767323041000\n")
	points, err := lineproto.Decode(body, "ms", "shop-1", now)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range points {
		fmt.Println(p.Metric, p.Labels, p.Timestamp, p.Value)
	}
	_, err = lineproto.Decode([]byte("web views=1\nweb,merchant=shop-2 views=1\n"), "", "shop-1", now)
	fmt.Println(err)
	// Output:
	// web_views {merchant="shop-1", page="/pricing"} 1767323040000 1
	// web_ms {merchant="shop-1", page="/pricing"} 1767323040000 230
	// web_views {merchant="shop-1", page="/pricing"} 1767323041000 1
	// web_ms {merchant="shop-1", page="/pricing"} 1767323041000 190
	// line 2: tag merchant="shop-2": the token is bound to merchant "shop-1" (invalid input)
}
