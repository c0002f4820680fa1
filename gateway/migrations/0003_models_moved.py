# The gateway app keeps no models: Provider and LanguageModel moved to `catalogue`, UsageRecord and
# Limit to `usage` (their migrations 0001 adopt the tables). Only the state forgets them here.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("gateway", "0002_limit"),
        ("catalogue", "0001_initial"),
        ("usage", "0001_initial"),
        ("conversations", "0003_models_moved"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="Limit"),
                migrations.DeleteModel(name="UsageRecord"),
                migrations.DeleteModel(name="LanguageModel"),
                migrations.DeleteModel(name="Provider"),
            ],
        ),
    ]
