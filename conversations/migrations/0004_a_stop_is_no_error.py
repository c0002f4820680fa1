from django.db import migrations


def clear_stop_errors(apps, schema_editor):
    # A reply the person stopped was stored with the error text "Stopped."; now it has none.
    Message = apps.get_model("conversations", "Message")
    Message.objects.filter(status="interrupted", error="Stopped.").update(error="")


class Migration(migrations.Migration):
    dependencies = [("conversations", "0003_models_moved")]

    operations = [migrations.RunPython(clear_stop_errors, migrations.RunPython.noop)]
