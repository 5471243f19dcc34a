/**
 * did_you_mean.js - spelling suggestions for a search box.
 *
 * When a user types "recieve" or "hnsw indx" and gets zero results, a good
 * search box offers a correction: "Did you mean: receive?". This module picks
 * suggestions from the index's own vocabulary using the Levenshtein edit
 * distance: the minimum number of single-character insertions, deletions and
 * substitutions needed to turn one word into another. Vladimir Levenshtein
 * defined it in 1965. "kitten" -> "sitting" has distance 3
 * (k->s, e->i, insert g).
 *
 * Design notes:
 *  - The dynamic-programming table is (a.length + 1) x (b.length + 1), but we
 *    only ever need the previous row, so memory is O(min(a, b)).
 *  - Optional Damerau transpositions count a swap of two adjacent letters
 *    ("teh" -> "the") as one edit instead of two; most typing errors are of
 *    this kind.
 *  - A maximum distance lets us abandon a comparison early once every cell in
 *    the current row exceeds the limit. With 100,000 vocabulary words this
 *    early exit is what keeps suggestions interactive.
 *  - Ties are broken by term frequency, so common words win over rare ones:
 *    for "cat" -> "car" vs "cab", the more frequent term is preferred.
 */

"use strict";

/**
 * Edit distance between two strings.
 * @param {string} a
 * @param {string} b
 * @param {number} [maxDistance=Infinity] stop early and return maxDistance + 1
 *   as soon as the distance is known to exceed this value.
 * @param {boolean} [transpositions=true] count adjacent swaps as one edit
 *   (optimal string alignment variant of Damerau-Levenshtein).
 * @returns {number}
 */
function editDistance(a, b, maxDistance = Infinity, transpositions = true) {
  if (Math.abs(a.length - b.length) > maxDistance) return maxDistance + 1;
  let prevPrev = null;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(
        prev[j] + 1,        // deletion
        row[j - 1] + 1,     // insertion
        prev[j - 1] + cost  // substitution (or match)
      );
      if (transpositions && prevPrev && i > 1 && j > 1 &&
          a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        value = Math.min(value, prevPrev[j - 2] + 1); // swap
      }
      row.push(value);
      if (value < rowMin) rowMin = value;
    }
    if (rowMin > maxDistance) return maxDistance + 1; // early exit
    prevPrev = prev;
    prev = row;
  }
  return prev[b.length];
}

/**
 * Suggest vocabulary words close to a misspelled query term.
 * @param {string} term the word the user typed
 * @param {Map<string, number>} vocabulary word -> document frequency
 * @param {number} [maxDistance=2] words farther than this are ignored;
 *   short words (4 letters or fewer) are limited to distance 1
 * @param {number} [limit=3] number of suggestions to return
 * @returns {string[]} best suggestions first
 */
function suggest(term, vocabulary, maxDistance = 2, limit = 3) {
  const word = term.toLowerCase();
  if (vocabulary.has(word)) return []; // spelled correctly, nothing to suggest
  const budget = word.length <= 4 ? Math.min(1, maxDistance) : maxDistance;
  const candidates = [];
  for (const [candidate, freq] of vocabulary) {
    const d = editDistance(word, candidate, budget);
    if (d <= budget) candidates.push({ candidate, d, freq });
  }
  candidates.sort((x, y) => x.d - y.d || y.freq - x.freq);
  return candidates.slice(0, limit).map((c) => c.candidate);
}

/**
 * Correct a whole query word by word, e.g. "hnsw indx" -> "hnsw index".
 * Returns null when no word needed changing.
 */
function didYouMean(query, vocabulary) {
  let changed = false;
  const words = query.split(/\s+/).filter(Boolean).map((w) => {
    const [best] = suggest(w, vocabulary);
    if (best) { changed = true; return best; }
    return w;
  });
  return changed ? words.join(" ") : null;
}

module.exports = { editDistance, suggest, didYouMean };

if (require.main === module) {
  const vocab = new Map([["index", 120], ["indexes", 40], ["receive", 15], ["the", 900], ["hnsw", 8]]);
  console.log(editDistance("kitten", "sitting")); // 3
  console.log(editDistance("teh", "the"));        // 1 with transpositions
  console.log(didYouMean("hnsw indx", vocab));    // "hnsw index"
  console.log(suggest("recieve", vocab));         // ["receive"]
}
