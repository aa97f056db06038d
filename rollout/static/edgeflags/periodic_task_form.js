// django-celery-beat's crontab translation on the periodic task form (its own inline
// script, moved here so that the Content-Security-Policy needs no 'unsafe-inline').
(function () {
  "use strict";
  const script = document.currentScript;
  const readable = JSON.parse(document.getElementById("readable-crontabs").textContent);
  const originalHelp = script.dataset.crontabHelp || "";
  const $ = window.django.jQuery;
  $(".field-crontab_translation").hide();
  $(".field-crontab").change(function () {
    const help = $(".field-crontab .help");
    help.text(originalHelp);
    help.append("<br>", document.createTextNode("Translation: " + (readable[$("#id_crontab").val()] || "")));
  });
})();
