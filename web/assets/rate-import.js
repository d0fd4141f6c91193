// The rate import form, for browsers with JavaScript: a chosen file is read
// into the form, and sending and checking it show their progress. Without
// this script the form works as it is (paste the file's text).
"use strict";

function megabytes(bytes) {
  return (bytes / 1048576).toFixed(1) + " MB";
}

function enhanceRateImport() {
  const form = document.getElementById("rate-import");
  if (!form) {
    return;
  }
  const picker = document.getElementById("csv-file");
  const text = document.getElementById("csv");
  const bar = document.getElementById("import-progress");
  const status = document.getElementById("import-status");
  const say = (message) => {
    status.textContent = message;
  };
  picker.hidden = false;
  document.querySelector("label[for=csv-file]").hidden = false;

  picker.addEventListener("change", () => {
    const file = picker.files[0];
    if (!file) {
      return;
    }
    const reader = new FileReader();
    bar.hidden = false;
    bar.max = file.size || 1;
    bar.value = 0;
    reader.onprogress = (event) => {
      bar.value = event.loaded;
      say("Reading " + file.name + ": " + megabytes(event.loaded) + " of " + megabytes(file.size));
    };
    reader.onload = () => {
      text.value = reader.result;
      bar.value = bar.max;
      const lines = (reader.result.match(/\n(?=.)/g) || []).length;
      say(file.name + ": " + lines.toLocaleString("en-US") + " rows read. Preview them next.");
    };
    reader.onerror = () => say(file.name + " could not be read.");
    reader.readAsText(file);
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = new URLSearchParams(new FormData(form)).toString();
    const request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.setRequestHeader("Content-Type", "application/x-www-form-urlencoded");
    bar.hidden = false;
    bar.max = body.length || 1;
    bar.value = 0;
    say("Sending " + megabytes(body.length) + " …");
    request.upload.onprogress = (progress) => {
      if (progress.lengthComputable) {
        bar.max = progress.total;
        bar.value = progress.loaded;
        say("Sending: " + megabytes(progress.loaded) + " of " + megabytes(progress.total));
      }
    };
    request.upload.onload = () => {
      bar.removeAttribute("value");
      say("Sent. Checking every row …");
    };
    request.onload = () => {
      const answered = new URL(request.responseURL || form.action, location.href);
      if (answered.pathname !== new URL(form.action, location.href).pathname) {
        // Imported: Switchboard sent us on to the calling plan's page.
        location.assign(answered.href);
        return;
      }
      // The preview (or an error page): show it in place of this page.
      const page = new DOMParser().parseFromString(request.responseText, "text/html");
      document.title = page.title;
      document.body.replaceWith(document.adoptNode(page.body));
      window.scrollTo(0, 0);
      enhanceRateImport();
    };
    request.onerror = () => {
      bar.hidden = true;
      say("Sending failed; nothing was changed. Try again.");
      form.querySelectorAll("button").forEach((button) => {
        button.disabled = false;
      });
    };
    form.querySelectorAll("button").forEach((button) => {
      button.disabled = true;
    });
    request.send(body);
  });
}

document.addEventListener("DOMContentLoaded", enhanceRateImport);
