// "Check a list": upload progress for a large file. Without this script the form
// posts as usual; with it, the same form goes by XMLHttpRequest, whose upload
// events drive the progress bar, and the answer page is then opened.
(function () {
  "use strict";
  var form = document.getElementById("list-check-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) { return; }
  var box = document.getElementById("list-check-progress");
  var bar = document.getElementById("list-check-bar");
  var status = document.getElementById("list-check-status");
  var button = form.querySelector("button[type=submit]");

  function megabytes(bytes) { return (bytes / 1048576).toFixed(1) + " MB"; }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var request = new XMLHttpRequest();
    request.open("POST", form.action);
    box.hidden = false;
    button.disabled = true;
    request.upload.addEventListener("progress", function (progress) {
      if (!progress.lengthComputable) { return; }
      bar.max = progress.total;
      bar.value = progress.loaded;
      status.textContent = "Uploading: " + megabytes(progress.loaded) + " of " +
        megabytes(progress.total);
    });
    request.upload.addEventListener("load", function () {
      bar.removeAttribute("value"); // indeterminate while the server checks
      status.textContent = "Uploaded; checking the list…";
    });
    request.addEventListener("load", function () {
      if (request.status === 200 && /\/admin\/checks\/result$/.test(request.responseURL)) {
        window.location.assign(request.responseURL);
        return;
      }
      // The form again with its errors (or an error page): show it as sent.
      document.open();
      document.write(request.responseText);
      document.close();
    });
    request.addEventListener("error", function () {
      status.textContent = "The upload failed (the connection was lost). Try again.";
      button.disabled = false;
    });
    request.send(new FormData(form));
  });
})();
