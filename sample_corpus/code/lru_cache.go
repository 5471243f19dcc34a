// Package querycache provides a fixed-size LRU cache for search results.
//
// Search traffic is heavily skewed: in most logs a small set of popular
// queries ("login", "pricing", "reset password") accounts for a large share of
// all requests. Caching the final ranked result list for those queries avoids
// re-running the embedding model, the vector index lookup and the BM25 scoring
// every time.
//
// The eviction policy is Least Recently Used (LRU): when the cache is full,
// the entry that has gone longest without being read or written is dropped.
// LRU is implemented in the classic way with two structures:
//
//   - a hash map from key to list element, giving O(1) lookup;
//   - a doubly linked list ordered by recency, giving O(1) move-to-front and
//     O(1) removal of the oldest entry from the back.
//
// Entries also carry an expiry time (TTL), because cached results go stale
// when documents are added to or removed from the index. A simpler strategy,
// used by Invalidate, is to clear the whole cache whenever the index changes.
//
// The cache is safe for concurrent use by multiple goroutines; a single mutex
// guards both structures, which is adequate up to tens of thousands of
// lookups per second. Beyond that, shard the cache by key hash.
package querycache

import (
	"container/list"
	"strings"
	"sync"
	"time"
)

// Result is one ranked hit returned to the user.
type Result struct {
	DocID string
	Score float64
}

type entry struct {
	key     string
	results []Result
	expires time.Time
}

// Cache is an LRU cache from normalised query strings to result lists.
type Cache struct {
	mu       sync.Mutex
	capacity int
	ttl      time.Duration
	order    *list.List // front = most recently used
	items    map[string]*list.Element
	hits     uint64
	misses   uint64
}

// New returns a cache holding at most capacity queries, each valid for ttl.
// A ttl of zero means entries never expire on their own.
func New(capacity int, ttl time.Duration) *Cache {
	if capacity < 1 {
		capacity = 1
	}
	return &Cache{
		capacity: capacity,
		ttl:      ttl,
		order:    list.New(),
		items:    make(map[string]*list.Element, capacity),
	}
}

// Normalize folds case and collapses whitespace so that "  BM25 Ranking" and
// "bm25 ranking" share one cache entry. Keep this in line with the analyzer
// used by the index, or equal queries will miss the cache.
func Normalize(query string) string {
	return strings.Join(strings.Fields(strings.ToLower(query)), " ")
}

// Get returns the cached results for query and marks the entry as recently
// used. Expired entries are removed and reported as a miss.
func (c *Cache) Get(query string) ([]Result, bool) {
	key := Normalize(query)
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		c.misses++
		return nil, false
	}
	e := el.Value.(*entry)
	if c.ttl > 0 && time.Now().After(e.expires) {
		c.order.Remove(el)
		delete(c.items, key)
		c.misses++
		return nil, false
	}
	c.order.MoveToFront(el)
	c.hits++
	return e.results, true
}

// Put stores results for query, evicting the least recently used entry if
// the cache is full.
func (c *Cache) Put(query string, results []Result) {
	key := Normalize(query)
	c.mu.Lock()
	defer c.mu.Unlock()
	expires := time.Now().Add(c.ttl)
	if el, ok := c.items[key]; ok {
		e := el.Value.(*entry)
		e.results, e.expires = results, expires
		c.order.MoveToFront(el)
		return
	}
	if c.order.Len() >= c.capacity {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*entry).key)
	}
	c.items[key] = c.order.PushFront(&entry{key: key, results: results, expires: expires})
}

// Invalidate empties the cache. Call it after re-indexing documents.
func (c *Cache) Invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.order.Init()
	c.items = make(map[string]*list.Element, c.capacity)
}

// HitRate reports the fraction of Get calls served from the cache. A hit
// rate below about 20 percent suggests the cache is too small or the TTL too
// short to be worth its memory.
func (c *Cache) HitRate() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := c.hits + c.misses
	if total == 0 {
		return 0
	}
	return float64(c.hits) / float64(total)
}
