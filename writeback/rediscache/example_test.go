package rediscache_test

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/rediscache"
)

// Example wires the writeback engine to a Redis cache that waits for one
// replica per batch. (It needs servers, so it is compiled, not run.)
func Example() {
	ctx := context.Background()
	client := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:6379"}})
	defer client.Close()
	cache, err := rediscache.Open(ctx, client, &rediscache.Options{Prefix: "shop", WaitReplicas: 1, WaitTimeout: time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close()
	engine, err := writeback.New(cache, memstore.New(nil), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer engine.Close()
}
