// EdgePurge console: the only script, served from /console/assets/ (the CSP allows nothing else).
// Without it every page still works; it adds the live job and fleet views and a confirmation before purge_all.
'use strict';

// Live views (a job until it settles, the fleet): the server pushes the view's fragment over
// Server-Sent Events whenever it changes; the page never polls.
const live = document.querySelector('[data-live]');
if (live && 'EventSource' in window) {
  const events = new EventSource(live.getAttribute('data-live'));
  events.addEventListener(live.getAttribute('data-live-event') || 'job', (e) => {
    // The fragment is rendered by the same escaping templates as the page itself.
    const t = document.createElement('template');
    t.innerHTML = JSON.parse(e.data);
    live.replaceChildren(t.content);
  });
  const stop = () => {
    events.close();
    live.removeAttribute('data-live');
  };
  events.addEventListener('settled', stop);
  events.addEventListener('gone', stop);
}

// A whole-zone purge empties every domain of the zone: ask once.
const purgeForm = document.querySelector('form.purge-form');
if (purgeForm) {
  purgeForm.addEventListener('submit', (e) => {
    const type = purgeForm.querySelector('input[name="type"]:checked');
    if (type && type.value === 'purge_all' && !window.confirm('Purge every domain of this zone?')) e.preventDefault();
  });
}
