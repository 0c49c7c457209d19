// The search page's behaviour: plain JavaScript, no framework, no build step. Everything it shows
// of the data is set as text (highlights become <mark> elements built here), never parsed as HTML.
'use strict';

(() => {
  const PAGE_SIZE = 10;
  const $ = (id) => document.getElementById(id);
  const el = {
    form: $('search'), q: $('q'), sort: $('sort'), suggestions: $('suggestions'),
    status: $('status'), error: $('error'), empty: $('empty'), emptyQuery: $('empty-query'),
    didYouMean: $('did-you-mean'), didYouMeanLink: $('did-you-mean-link'), hits: $('hits'),
    pager: $('pager'), previous: $('previous'), next: $('next'), pageNumber: $('page-number'),
    hashtagFacets: $('hashtag-facets'), creatorFacets: $('creator-facets'), active: $('active'),
    chips: $('chips'), clear: $('clear'), template: $('hit'),
  };

  // What is searched: the text, hashtag filters (all must match), a creator, the order, and the
  // cursors of the pages seen so far (cursors[0] is the first page's: none).
  const state = { q: '', hashtags: [], user: null, sort: 'relevance', cursors: [null], page: 0 };
  let searchSeq = 0;
  let suggestSeq = 0;
  let searchTimer = 0;
  let suggestTimer = 0;

  const normalize = (hashtag) => hashtag.trim().replace(/^#+/, '').trim().toLowerCase();

  function make(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  // A fragment with matches in <em>…</em>, as text with the matches in <mark>.
  function highlighted(fragment) {
    const out = document.createDocumentFragment();
    let marked = false;
    for (const piece of fragment.split(/(<em>|<\/em>)/)) {
      if (piece === '<em>') marked = true;
      else if (piece === '</em>') marked = false;
      else if (piece) out.append(marked ? make('mark', piece) : document.createTextNode(piece));
    }
    return out;
  }

  function readLocation() {
    const params = new URLSearchParams(window.location.search);
    state.q = params.get('q') || '';
    state.hashtags = (params.get('hashtags') || '').split(',').map(normalize).filter(Boolean);
    const user = Number(params.get('user_id'));
    state.user = Number.isInteger(user) && user > 0 ? { id: user, name: `user ${user}` } : null;
    const sort = params.get('sort');
    state.sort = ['relevance', 'newest', 'oldest'].includes(sort) ? sort : 'relevance';
    el.q.value = state.q;
    el.sort.value = state.sort;
  }

  function writeLocation() {
    const params = new URLSearchParams();
    if (state.q.trim()) params.set('q', state.q);
    if (state.hashtags.length) params.set('hashtags', state.hashtags.join(','));
    if (state.user) params.set('user_id', String(state.user.id));
    if (state.sort !== 'relevance') params.set('sort', state.sort);
    const query = params.toString();
    window.history.replaceState(null, '', query ? `/?${query}` : '/');
  }

  function searchUrl() {
    const params = new URLSearchParams();
    if (state.q.trim()) params.set('q', state.q.trim());
    if (state.hashtags.length) {
      params.set('hashtags', state.hashtags.join(','));
      params.set('mode', 'all');
    }
    if (state.user) params.set('user_id', String(state.user.id));
    params.set('sort', state.sort);
    params.set('facets', 'hashtags,creators');
    params.set('size', String(PAGE_SIZE));
    const cursor = state.cursors[state.page];
    if (cursor) params.set('cursor', cursor);
    return `/v1/projects/search?${params}`;
  }

  // Fetches JSON; a problem answer or a failure to connect becomes an Error whose message is
  // meant for people.
  async function fetchJson(url) {
    let response;
    try {
      response = await fetch(url, { headers: { accept: 'application/json' } });
    } catch (_) {
      throw new Error('The search service cannot be reached. Check your connection and retry.');
    }
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!response.ok) {
      const detail = body && body.detail ? body.detail : `the server answered ${response.status}`;
      const retry = response.status >= 500 ? ' Retry in a moment.' : '';
      throw new Error(`Search failed: ${detail}.${retry}`);
    }
    return body;
  }

  function startSearch(resetPages) {
    if (resetPages) {
      state.cursors = [null];
      state.page = 0;
    }
    writeLocation();
    search();
  }

  async function search() {
    const seq = ++searchSeq;
    document.body.setAttribute('aria-busy', 'true');
    try {
      const page = await fetchJson(searchUrl());
      if (seq !== searchSeq) return;
      render(page);
    } catch (error) {
      if (seq !== searchSeq) return;
      showError(error.message);
    } finally {
      if (seq === searchSeq) document.body.removeAttribute('aria-busy');
    }
  }

  function showError(message) {
    el.error.textContent = message;
    el.error.hidden = false;
    el.status.textContent = '';
    el.empty.hidden = true;
    el.hits.replaceChildren();
    el.pager.hidden = true;
  }

  function render(page) {
    el.error.hidden = true;
    const total = page.total;
    const first = state.page * PAGE_SIZE + 1;
    const shown = page.items.length;
    el.status.textContent = total === 0
      ? ''
      : `${total.toLocaleString('en')} project${total === 1 ? '' : 's'}` +
        (total > shown ? ` · showing ${first}–${first + shown - 1}` : '');
    el.empty.hidden = total !== 0;
    el.emptyQuery.textContent = state.q.trim() ? `“${state.q.trim()}”` : 'these filters';
    el.didYouMean.hidden = !page.did_you_mean;
    el.didYouMeanLink.textContent = page.did_you_mean || '';
    el.hits.replaceChildren(...page.items.map(renderHit));
    renderFacets(page.facets || {});
    renderChips();
    if (page.next_cursor) state.cursors[state.page + 1] = page.next_cursor;
    else state.cursors.length = state.page + 1;
    el.pager.hidden = state.page === 0 && !page.next_cursor;
    el.previous.disabled = state.page === 0;
    el.next.disabled = !page.next_cursor;
    el.pageNumber.textContent = `Page ${state.page + 1}`;
  }

  function renderHit(item) {
    const project = item.project;
    const node = el.template.content.firstElementChild.cloneNode(true);
    const highlights = item.highlights || {};
    node.querySelector('.name').textContent = project.name;
    const slug = node.querySelector('.slug');
    if (highlights.slug) slug.append(highlighted(highlights.slug[0]));
    else slug.textContent = project.slug;
    const description = node.querySelector('.description');
    if (highlights.description) {
      highlights.description.forEach((fragment, i) => {
        if (i > 0) description.append(' … ');
        description.append(highlighted(fragment));
      });
    } else {
      description.textContent = project.description;
    }
    const creators = project.creators.map((creator) => creator.name).join(', ');
    node.querySelector('.creators').textContent = creators ? `by ${creators}` : 'no known creator';
    node.querySelector('.created').textContent =
      `· created ${new Date(project.created_at).toISOString().slice(0, 10)}`;
    const tags = node.querySelector('.tags');
    for (const hashtag of project.hashtags) {
      const button = make('button', `#${hashtag.name}`);
      button.type = 'button';
      button.title = `Only projects tagged #${normalize(hashtag.name)}`;
      button.addEventListener('click', () => addHashtag(hashtag.name));
      const item = make('li');
      item.append(button);
      tags.append(item);
    }
    return node;
  }

  function facetButton(label, count, pressed, onClick) {
    const button = make('button');
    button.type = 'button';
    button.setAttribute('aria-pressed', String(pressed));
    button.append(make('span', label, 'label'), make('span', String(count), 'count'));
    button.addEventListener('click', onClick);
    const item = make('li');
    item.append(button);
    return item;
  }

  function renderFacets(facets) {
    const hashtags = facets.hashtags || [];
    el.hashtagFacets.replaceChildren(...hashtags.map((facet) => {
      const on = state.hashtags.includes(facet.name);
      return facetButton(`#${facet.name}`, facet.count, on,
        () => (on ? removeHashtag(facet.name) : addHashtag(facet.name)));
    }));
    if (!hashtags.length) el.hashtagFacets.append(make('li', 'none', 'count'));
    const creators = facets.creators || [];
    el.creatorFacets.replaceChildren(...creators.map((facet) => {
      const on = Boolean(state.user && state.user.id === facet.id);
      if (on) state.user.name = facet.name;
      return facetButton(facet.name || `user ${facet.id}`, facet.count, on,
        () => setUser(on ? null : { id: facet.id, name: facet.name }));
    }));
    if (!creators.length) el.creatorFacets.append(make('li', 'none', 'count'));
  }

  function renderChips() {
    const chips = state.hashtags.map((name) => [`#${name} ×`, () => removeHashtag(name)]);
    if (state.user) chips.push([`by ${state.user.name} ×`, () => setUser(null)]);
    el.chips.replaceChildren(...chips.map(([label, onClick]) => {
      const button = make('button', label);
      button.type = 'button';
      button.title = 'Remove this filter';
      button.addEventListener('click', onClick);
      const item = make('li');
      item.append(button);
      return item;
    }));
    el.active.hidden = chips.length === 0;
  }

  function addHashtag(name) {
    const hashtag = normalize(name);
    if (hashtag && !state.hashtags.includes(hashtag)) state.hashtags.push(hashtag);
    startSearch(true);
  }

  function removeHashtag(name) {
    state.hashtags = state.hashtags.filter((hashtag) => hashtag !== name);
    startSearch(true);
  }

  function setUser(user) {
    state.user = user;
    startSearch(true);
  }

  // --- as-you-type suggestions -------------------------------------------------------------------
  function hideSuggestions() {
    el.suggestions.hidden = true;
    el.suggestions.replaceChildren();
    el.q.setAttribute('aria-expanded', 'false');
  }

  async function suggest() {
    const text = el.q.value.trim();
    const seq = ++suggestSeq;
    if (!text) {
      hideSuggestions();
      return;
    }
    let list;
    try {
      list = await fetchJson(`/v1/suggestions?${new URLSearchParams({ q: text, limit: '4' })}`);
    } catch (_) {
      if (seq === suggestSeq) hideSuggestions(); // the search itself reports failures
      return;
    }
    if (seq !== suggestSeq || document.activeElement !== el.q) return;
    const options = [
      ...list.projects.map((p) => [p.name === p.slug ? p.name : `${p.name} (${p.slug})`, 'project',
        () => { el.q.value = p.slug; state.q = p.slug; }]),
      ...list.hashtags.map((h) => [`#${h}`, 'hashtag',
        () => { el.q.value = ''; state.q = ''; addHashtagQuietly(h); }]),
      ...list.users.map((u) => [u.name, 'creator',
        () => { el.q.value = ''; state.q = ''; state.user = { id: u.id, name: u.name }; }]),
    ];
    el.suggestions.replaceChildren(...options.map(([label, kind, choose]) => {
      const item = make('li');
      item.setAttribute('role', 'option');
      item.append(make('span', label), make('span', kind, 'kind'));
      item.addEventListener('mousedown', (event) => {
        event.preventDefault(); // keep the focus in the box
        choose();
        hideSuggestions();
        startSearch(true);
      });
      return item;
    }));
    el.suggestions.hidden = options.length === 0;
    el.q.setAttribute('aria-expanded', String(options.length > 0));
  }

  function addHashtagQuietly(name) {
    const hashtag = normalize(name);
    if (hashtag && !state.hashtags.includes(hashtag)) state.hashtags.push(hashtag);
  }

  // --- events ------------------------------------------------------------------------------------
  el.q.addEventListener('input', () => {
    clearTimeout(searchTimer);
    clearTimeout(suggestTimer);
    searchTimer = setTimeout(() => {
      state.q = el.q.value;
      startSearch(true);
    }, 200);
    suggestTimer = setTimeout(suggest, 120);
  });
  el.q.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') hideSuggestions();
  });
  el.q.addEventListener('blur', hideSuggestions);
  el.form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearTimeout(searchTimer);
    hideSuggestions();
    state.q = el.q.value;
    startSearch(true);
  });
  el.sort.addEventListener('change', () => {
    state.sort = el.sort.value;
    startSearch(true);
  });
  el.didYouMeanLink.addEventListener('click', () => {
    el.q.value = el.didYouMeanLink.textContent;
    state.q = el.q.value;
    startSearch(true);
  });
  el.clear.addEventListener('click', () => {
    state.hashtags = [];
    state.user = null;
    startSearch(true);
  });
  el.previous.addEventListener('click', () => {
    if (state.page > 0) {
      state.page -= 1;
      search();
      window.scrollTo(0, 0);
    }
  });
  el.next.addEventListener('click', () => {
    if (state.cursors[state.page + 1]) {
      state.page += 1;
      search();
      window.scrollTo(0, 0);
    }
  });

  readLocation();
  startSearch(true);
})();
